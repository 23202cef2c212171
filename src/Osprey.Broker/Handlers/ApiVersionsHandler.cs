// ApiVersions (key 18), versions 0-4.
//   v0-2: the supported ranges. v3+: flexible; the client sends its software name and version, which must match
//   [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? or the answer is INVALID_REQUEST.
//   v3+ also lists the features, supported and finalized: transaction.version 2 (KIP-890 part 2: a client that
//   sees it ends transactions with EndTxn v5 and bumps its epoch each time) and group.version 1 (KIP-848), and as
//   Kafka 4.0 reports them on one node, metadata.version 3.3-IV3 to 4.0-IV3 (levels 7 to 25, finalized at 25),
//   kraft.version and eligible.leader.replicas.version (0 to 1, not finalized: level 0 is left out of the list).
//   A request at a version the broker does not support is answered (by the connection handler) in the v0 shape
//   with UNSUPPORTED_VERSION and the ranges, so the client can retry with a version both know.
using System.Text.RegularExpressions;
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed partial class ApiVersionsHandler(Func<IEnumerable<IRequestHandler>> supported) : RequestHandler<ApiVersionsRequest, ApiVersionsResponse>
{
    public override ApiKey ApiKey => ApiKey.ApiVersions;

    public override short MinVersion => 0;

    public override short MaxVersion => 4;

    protected override ValueTask<ApiVersionsResponse> HandleAsync(RequestContext context, ApiVersionsRequest request, CancellationToken cancellationToken)
    {
        var response = Build(supported(), ErrorCode.None);
        if (context.ApiVersion >= 3 && (!SoftwareField().IsMatch(request.ClientSoftwareName) || !SoftwareField().IsMatch(request.ClientSoftwareVersion)))
        {
            response.ErrorCode = (short)ErrorCode.InvalidRequest;
        }

        return ValueTask.FromResult(response);
    }

    /// <summary>The response listing <paramref name="handlers"/>' ranges, with <paramref name="error"/>.</summary>
    public static ApiVersionsResponse Build(IEnumerable<IRequestHandler> handlers, ErrorCode error) => new()
    {
        ErrorCode = (short)error,
        ApiKeys = handlers
            .OrderBy(h => h.ApiKey)
            .Select(h => new ApiVersionsResponse.ApiVersion { ApiKey = (short)h.ApiKey, MinVersion = h.MinVersion, MaxVersion = h.MaxVersion })
            .ToList(),
        SupportedFeatures = Features.Select(f => new ApiVersionsResponse.SupportedFeatureKey { Name = f.Name, MinVersion = f.Min, MaxVersion = f.Max }).ToList(),
        FinalizedFeaturesEpoch = FeaturesEpoch,
        FinalizedFeatures = Features.Where(f => f.Finalized > 0).Select(f => new ApiVersionsResponse.FinalizedFeatureKey { Name = f.Name, MinVersionLevel = f.Finalized, MaxVersionLevel = f.Finalized }).ToList(),
    };

    /// <summary>
    /// The features this broker reports: the range it supports and the level in force (0: not finalized). They cannot
    /// be changed yet (UpdateFeatures comes with clustering).
    /// </summary>
    internal static readonly (string Name, short Min, short Max, short Finalized)[] Features =
    [
        ("eligible.leader.replicas.version", 0, 1, 0),
        ("group.version", 0, 1, 1),
        ("kraft.version", 0, 1, 0),
        ("metadata.version", 7, 25, 25),
        ("transaction.version", 0, TransactionCoordinator.TransactionVersion2, TransactionCoordinator.TransactionVersion2),
    ];

    private const long FeaturesEpoch = 1;

    [GeneratedRegex("^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$")]
    private static partial Regex SoftwareField();
}
