// FindCoordinator (key 10), versions 0-6.
//   Groups (key type 0): this broker coordinates every group; the first request creates __consumer_offsets. v4+
//   asks for several keys at once (CoordinatorKeys) and answers per key. Transactional ids (key type 1): this
//   broker's transaction coordinator; the first request creates __transaction_state. Other key types:
//   INVALID_REQUEST. An empty group id: INVALID_GROUP_ID; an empty transactional id: INVALID_REQUEST.
using Osprey.Broker.Groups;
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class FindCoordinatorHandler(GroupCoordinator groups, TransactionCoordinator transactions, BrokerIdentity identity) : RequestHandler<FindCoordinatorRequest, FindCoordinatorResponse>
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
            var (error, message) = await FindAsync(request.KeyType, key, cancellationToken).ConfigureAwait(false);
            var ok = error == ErrorCode.None;
            response.Coordinators.Add(new FindCoordinatorResponse.Coordinator
            {
                Key = key,
                NodeId = ok ? identity.NodeId : -1,
                Host = ok ? identity.Host : "",
                Port = ok ? identity.Port : -1,
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

    private async Task<(ErrorCode, string?)> FindAsync(sbyte keyType, string key, CancellationToken cancellationToken)
    {
        switch (keyType)
        {
            case 0 when key.Length == 0:
                return (ErrorCode.InvalidGroupId, "The group id must not be empty.");
            case 0:
                var error = await groups.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
                return (error, error == ErrorCode.None ? null : "The group coordinator is not available.");
            case 1 when key.Length == 0:
                return (ErrorCode.InvalidRequest, "The transactional id must not be empty.");
            case 1:
                var started = await transactions.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
                return (started, started == ErrorCode.None ? null : "The transaction coordinator is not available.");
            default:
                return (ErrorCode.InvalidRequest, $"Unknown coordinator key type {keyType}.");
        }
    }
}
