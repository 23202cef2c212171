// FindCoordinator (key 10), versions 0-6.
//   Groups (key type 0) live in __consumer_offsets, transactional ids (key type 1) in __transaction_state, each in the
//   partition abs(hash(key)) % partitions; the coordinator is that partition's leader, at its endpoint on the
//   listener the request came in on. The first request creates the topic (through the active controller).
//   COORDINATOR_NOT_AVAILABLE while the topic cannot be created or the partition has no leader (or the leader has no
//   endpoint on this listener). v4+ asks for several keys at once (CoordinatorKeys) and answers per key. An empty
//   group id: INVALID_GROUP_ID; an empty transactional id: INVALID_REQUEST; other key types: INVALID_REQUEST.
using Osprey.Broker.Control;
using Osprey.Broker.Groups;
using Osprey.Broker.Transactions;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class FindCoordinatorHandler(GroupCoordinator groups, TransactionCoordinator transactions, IMetadataQuorum metadata, BrokerOptions options)
    : RequestHandler<FindCoordinatorRequest, FindCoordinatorResponse>
{
    public override ApiKey ApiKey => ApiKey.FindCoordinator;

    public override short MinVersion => 0;

    public override short MaxVersion => 6;

    protected override async ValueTask<FindCoordinatorResponse> HandleAsync(RequestContext context, FindCoordinatorRequest request, CancellationToken cancellationToken)
    {
        var keys = context.ApiVersion >= 4 ? request.CoordinatorKeys : [request.Key];
        var response = new FindCoordinatorResponse();
        foreach (var key in keys)
        {
            var (error, message, endpoint) = await FindAsync(request.KeyType, key, cancellationToken).ConfigureAwait(false);
            response.Coordinators.Add(new FindCoordinatorResponse.Coordinator
            {
                Key = key,
                NodeId = endpoint?.NodeId ?? -1,
                Host = endpoint?.Host ?? "",
                Port = endpoint?.Port ?? -1,
                ErrorCode = (short)error,
                ErrorMessage = message,
            });
        }

        if (context.ApiVersion < 4)
        {
            var only = response.Coordinators[0];
            response = new FindCoordinatorResponse { ErrorCode = only.ErrorCode, ErrorMessage = only.ErrorMessage, NodeId = only.NodeId, Host = only.Host, Port = only.Port };
        }

        return response;
    }

    private async Task<(ErrorCode, string?, (int NodeId, string Host, int Port)?)> FindAsync(sbyte keyType, string key, CancellationToken cancellationToken)
    {
        switch (keyType)
        {
            case 0 when key.Length == 0:
                return (ErrorCode.InvalidGroupId, "The group id must not be empty.", null);
            case 0:
                return await LocateAsync(await groups.EnsureStartedAsync(cancellationToken).ConfigureAwait(false), groups.CoordinatorOf(key), "group").ConfigureAwait(false);
            case 1 when key.Length == 0:
                return (ErrorCode.InvalidRequest, "The transactional id must not be empty.", null);
            case 1:
                return await LocateAsync(await transactions.EnsureStartedAsync(cancellationToken).ConfigureAwait(false), transactions.CoordinatorOf(key), "transaction").ConfigureAwait(false);
            default:
                return (ErrorCode.InvalidRequest, $"Unknown coordinator key type {keyType}.", null);
        }
    }

    /// <summary>The coordinator's endpoint on this listener, once its topic exists and its partition has a leader.</summary>
    private ValueTask<(ErrorCode, string?, (int, string, int)?)> LocateAsync(ErrorCode started, int leader, string kind)
    {
        if (started != ErrorCode.None)
        {
            return new((started, $"The {kind} coordinator is not available.", null));
        }

        var found = ClusterView.Brokers(metadata.Image, options.ListenerName).Where(b => b.Broker.Id == leader).Select(b => (b.Broker.Id, b.Endpoint.Host, b.Endpoint.Port)).ToList();
        return found.Count == 0
            ? new((ErrorCode.CoordinatorNotAvailable, $"The {kind} coordinator is not available: its partition has no leader reachable on this listener yet.", null))
            : new((ErrorCode.None, null, found[0]));
    }
}
