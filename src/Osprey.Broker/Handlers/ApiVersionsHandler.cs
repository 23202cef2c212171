// ApiVersions (key 18), versions 0-4.
//   v0-2: the supported ranges. v3+: flexible; the client sends its software name and version, which must match
//   [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? or the answer is INVALID_REQUEST.
//   v3+ also lists the features, supported and finalized: transaction.version 2 (KIP-890 part 2: a client that
//   sees it ends transactions with EndTxn v5 and bumps its epoch each time) and group.version 1 (KIP-848).
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
        SupportedFeatures = Features.Select(f => new ApiVersionsResponse.SupportedFeatureKey { Name = f.Name, MinVersion = 0, MaxVersion = f.Level }).ToList(),
        FinalizedFeaturesEpoch = FeaturesEpoch,
        FinalizedFeatures = Features.Select(f => new ApiVersionsResponse.FinalizedFeatureKey { Name = f.Name, MinVersionLevel = f.Level, MaxVersionLevel = f.Level }).ToList(),
    };

    /// <summary>The features this broker implements, each finalized at its highest level (they cannot be changed yet).</summary>
    internal static readonly (string Name, short Level)[] Features = [("group.version", 1), ("transaction.version", TransactionCoordinator.TransactionVersion2)];

    private const long FeaturesEpoch = 1;

    [GeneratedRegex("^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$")]
    private static partial Regex SoftwareField();
}
