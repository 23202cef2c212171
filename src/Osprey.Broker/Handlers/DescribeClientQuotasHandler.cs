// DescribeClientQuotas (key 48), versions 0-1.
//   No client quotas can be set yet (AlterClientQuotas is not advertised, so clients refuse it themselves until quotas
//   are enforced), so a valid filter matches no entries. The filter is checked as Kafka checks it: entity types
//   user, client-id and ip only (else UNSUPPORTED_VERSION), each at most once, match types 0 (exact), 1 (default)
//   and 2 (any), else INVALID_REQUEST; an invalid filter answers with null entries.
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeClientQuotasHandler : RequestHandler<DescribeClientQuotasRequest, DescribeClientQuotasResponse>
{
    private static readonly string[] EntityTypes = ["user", "client-id", "ip"];

    public override ApiKey ApiKey => ApiKey.DescribeClientQuotas;

    public override short MinVersion => 0;

    public override short MaxVersion => 1;

    protected override ValueTask<DescribeClientQuotasResponse> HandleAsync(RequestContext context, DescribeClientQuotasRequest request, CancellationToken cancellationToken)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var component in request.Components)
        {
            var (error, message) = !EntityTypes.Contains(component.EntityType) ? (ErrorCode.UnsupportedVersion, $"Unsupported entity type {component.EntityType}")
                : !seen.Add(component.EntityType) ? (ErrorCode.InvalidRequest, $"Entity type {component.EntityType} cannot appear more than once in the filter.")
                : component.MatchType is < 0 or > 2 ? (ErrorCode.InvalidRequest, $"Unknown match type {component.MatchType}")
                : (ErrorCode.None, null);
            if (error != ErrorCode.None)
            {
                return ValueTask.FromResult(new DescribeClientQuotasResponse { ErrorCode = (short)error, ErrorMessage = message, Entries = null });
            }
        }

        return ValueTask.FromResult(new DescribeClientQuotasResponse());
    }
}
