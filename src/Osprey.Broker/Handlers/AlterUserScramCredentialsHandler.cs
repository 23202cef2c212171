// AlterUserScramCredentials (key 51), version 0.
//   Deletions, then upsertions, each checked as Kafka checks them: an empty user name or an iteration count outside
//   4096-16384 is UNACCEPTABLE_CREDENTIAL, a mechanism other than SCRAM-SHA-256 (1) / SCRAM-SHA-512 (2)
//   UNSUPPORTED_SASL_MECHANISM, deleting a credential that does not exist RESOURCE_NOT_FOUND, and a user altered
//   twice in one request DUPLICATE_RESOURCE (none of its changes apply). The first error of a user is its answer.
//   What passes is written to the cluster metadata in one step: the salt, iterations, StoredKey and ServerKey derived
//   from the salted password the client sent (the password itself never reaches the broker). A broker that is not
//   the active controller forwards the request to it.
using Osprey.Broker.Control;
using Osprey.Broker.Security;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AlterUserScramCredentialsHandler(IMetadataQuorum metadata, AdminForwarder forwarder)
    : RequestHandler<AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse>
{
    public override ApiKey ApiKey => ApiKey.AlterUserScramCredentials;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override async ValueTask<AlterUserScramCredentialsResponse> HandleAsync(RequestContext context, AlterUserScramCredentialsRequest request, CancellationToken cancellationToken)
    {
        List<(string User, ErrorCode Error, string? Message)> results;
        try
        {
            if (forwarder.ShouldForward)
            {
                return await forwarder.ForwardAsync<AlterUserScramCredentialsResponse>(request, context.ApiVersion, cancellationToken).ConfigureAwait(false);
            }

            (_, results) = await metadata.UpdateAsync(image => Plan(image, request), cancellationToken).ConfigureAwait(false);
        }
        catch (NotControllerException e)
        {
            results = [.. request.Deletions.Select(d => d.Name).Concat(request.Upsertions.Select(u => u.Name)).Distinct(StringComparer.Ordinal)
                .Select(user => (user, ErrorCode.NotController, (string?)e.Message))];
        }

        return new AlterUserScramCredentialsResponse
        {
            Results = [.. results.Select(r => new AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult { User = r.User, ErrorCode = (short)r.Error, ErrorMessage = r.Message })],
        };
    }

    private static (IReadOnlyList<IVersionedMessage>, List<(string User, ErrorCode Error, string? Message)>) Plan(ClusterImage image, AlterUserScramCredentialsRequest request)
    {
        var order = new List<string>();
        var errors = new Dictionary<string, (ErrorCode, string)>(StringComparer.Ordinal);
        var changes = new Dictionary<string, IVersionedMessage>(StringComparer.Ordinal);
        void Take(string user, Func<(ErrorCode, string)?> check, Func<IVersionedMessage> change)
        {
            if (!errors.ContainsKey(user) && !changes.ContainsKey(user))
            {
                order.Add(user);
            }

            if (errors.ContainsKey(user))
            {
                return;
            }

            if (changes.Remove(user))
            {
                errors[user] = (ErrorCode.DuplicateResource, "A user credential cannot be altered twice in the same request");
            }
            else if (check() is { } error)
            {
                errors[user] = error;
            }
            else
            {
                changes[user] = change();
            }
        }

        foreach (var deletion in request.Deletions)
        {
            Take(
                deletion.Name,
                () => deletion.Name.Length == 0 ? (ErrorCode.UnacceptableCredential, "Username must not be empty")
                    : ScramMechanism.FromId(deletion.Mechanism) is null ? (ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
                    : image.ScramCredentials.GetValueOrDefault(deletion.Name)?.ContainsKey(deletion.Mechanism) != true
                        ? (ErrorCode.ResourceNotFound, "Attempt to delete a user credential that does not exist")
                        : null,
                () => new RemoveUserScramCredentialRecord { Name = deletion.Name, Mechanism = deletion.Mechanism });
        }

        foreach (var upsertion in request.Upsertions)
        {
            var mechanism = ScramMechanism.FromId(upsertion.Mechanism);
            Take(
                upsertion.Name,
                () => upsertion.Name.Length == 0 ? (ErrorCode.UnacceptableCredential, "Username must not be empty")
                    : mechanism is null ? (ErrorCode.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
                    : upsertion.Iterations < mechanism.MinIterations ? (ErrorCode.UnacceptableCredential, "Too few iterations")
                    : upsertion.Iterations > mechanism.MaxIterations ? (ErrorCode.UnacceptableCredential, "Too many iterations")
                    : upsertion.SaltedPassword.Length == 0 || upsertion.Salt.Length == 0 ? (ErrorCode.UnacceptableCredential, "Salt and salted password must not be empty")
                    : null,
                () =>
                {
                    var (storedKey, serverKey) = mechanism!.Keys(upsertion.SaltedPassword);
                    return new UserScramCredentialRecord
                    {
                        Name = upsertion.Name,
                        Mechanism = upsertion.Mechanism,
                        Salt = upsertion.Salt,
                        StoredKey = storedKey,
                        ServerKey = serverKey,
                        Iterations = upsertion.Iterations,
                    };
                });
        }

        var results = order.Select(user => errors.TryGetValue(user, out var e) ? (user, e.Item1, (string?)e.Item2) : (user, ErrorCode.None, null)).ToList();
        return ([.. order.Where(changes.ContainsKey).Select(u => changes[u])], results);
    }
}
