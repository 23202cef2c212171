// DescribeUserScramCredentials (key 50), version 0.
//   The SCRAM credentials in the cluster metadata: for each user, its mechanisms and iteration counts (never a key or
//   salt). Null or no users lists every user that has one. A user named twice is DUPLICATE_RESOURCE, one without
//   credentials RESOURCE_NOT_FOUND, each answered once, with Kafka's messages.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeUserScramCredentialsHandler(IMetadataQuorum metadata)
    : RequestHandler<DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeUserScramCredentials;

    public override short MinVersion => 0;

    public override short MaxVersion => 0;

    protected override ValueTask<DescribeUserScramCredentialsResponse> HandleAsync(RequestContext context, DescribeUserScramCredentialsRequest request, CancellationToken cancellationToken)
    {
        var credentials = metadata.Image.ScramCredentials;
        var response = new DescribeUserScramCredentialsResponse();
        if (request.Users is not { Count: > 0 } users)
        {
            response.Results = [.. credentials.Keys.Select(user => Describe(user, credentials[user]))];
            return ValueTask.FromResult(response);
        }

        var counts = users.GroupBy(u => u.Name).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        foreach (var user in users.Select(u => u.Name).Distinct(StringComparer.Ordinal))
        {
            if (counts[user] > 1)
            {
                response.Results.Add(Failed(user, ErrorCode.DuplicateResource, $"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"));
            }
            else if (credentials.TryGetValue(user, out var mechanisms))
            {
                response.Results.Add(Describe(user, mechanisms));
            }
            else
            {
                response.Results.Add(Failed(user, ErrorCode.ResourceNotFound, $"Attempt to describe a user credential that does not exist: {user}"));
            }
        }

        return ValueTask.FromResult(response);
    }

    private static DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult Describe(string user, IEnumerable<KeyValuePair<sbyte, ScramCredential>> mechanisms) => new()
    {
        User = user,
        CredentialInfos = [.. mechanisms.Select(m => new DescribeUserScramCredentialsResponse.CredentialInfo { Mechanism = m.Key, Iterations = m.Value.Iterations })],
    };

    private static DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult Failed(string user, ErrorCode error, string message) =>
        new() { User = user, ErrorCode = (short)error, ErrorMessage = message };
}
