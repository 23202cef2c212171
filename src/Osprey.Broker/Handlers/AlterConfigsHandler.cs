// AlterConfigs (key 33), versions 0-2: the legacy form. The configs given replace all of the resource's overrides
// (a topic's, or the dynamic configs of this broker or of the cluster default; any not given return to their
// defaults). Validation, errors and forwarding to the active controller as IncrementalAlterConfigs.
using Osprey.Broker.Control;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AlterConfigsHandler(Config.ConfigUpdater updater, AdminForwarder forwarder) : RequestHandler<AlterConfigsRequest, AlterConfigsResponse>
{
    public override ApiKey ApiKey => ApiKey.AlterConfigs;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override async ValueTask<AlterConfigsResponse> HandleAsync(RequestContext context, AlterConfigsRequest request, CancellationToken cancellationToken)
    {
        var response = new AlterConfigsResponse();
        var forwarded = new List<(AlterConfigsRequest.AlterConfigsResource Resource, AlterConfigsResponse.AlterConfigsResourceResponse Result)>();
        foreach (var resource in request.Resources)
        {
            var result = new AlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName };
            response.Responses.Add(result);
            if (!forwarder.OnControllerListener && updater.CheckAddressedBroker(resource.ResourceType, resource.ResourceName) is { } misaddressed)
            {
                (result.ErrorCode, result.ErrorMessage) = ((short)misaddressed.Error, misaddressed.Message);
                continue;
            }

            if (forwarder.ShouldForward)
            {
                forwarded.Add((resource, result));
                continue;
            }

            var (error, message) = await updater.AlterAsync(
                resource.ResourceType,
                resource.ResourceName,
                _ => resource.Configs.FirstOrDefault(c => c.Value is null) is { } unset
                    ? (null, (ErrorCode.InvalidRequest, $"Null value not supported for : {unset.Name}"))
                    : (resource.Configs.ToDictionary(c => c.Name, c => c.Value!, StringComparer.Ordinal), null),
                request.ValidateOnly,
                cancellationToken).ConfigureAwait(false);
            result.ErrorCode = (short)error;
            result.ErrorMessage = message;
        }

        if (forwarded.Count > 0)
        {
            request.Resources = [.. forwarded.Select(f => f.Resource)];
            await forwarder.ForwardEachAsync<AlterConfigsResponse, AlterConfigsResponse.AlterConfigsResourceResponse, (sbyte, string)>(
                request,
                context.ApiVersion,
                [.. forwarded.Select(f => f.Result)],
                answer => answer.Responses,
                r => (r.ResourceType, r.ResourceName),
                r => (r.ErrorCode, r.ErrorMessage),
                (r, error) => (r.ErrorCode, r.ErrorMessage) = error,
                cancellationToken).ConfigureAwait(false);
        }

        return response;
    }
}
