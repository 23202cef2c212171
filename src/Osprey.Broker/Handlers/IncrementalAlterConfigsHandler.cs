// IncrementalAlterConfigs (key 44), versions 0-1.
//   Topic resources: SET (0), DELETE (1), APPEND (2) and SUBTRACT (3, list configs such as cleanup.policy) on the
//   topic's overrides; the result is validated as a whole and written to the metadata log, then the partition logs
//   take the new settings. ValidateOnly checks without writing. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; invalid
//   names, values or operations: INVALID_CONFIG, a null value to SET INVALID_REQUEST (Kafka's messages). Broker resources (this node's id, or "" for the cluster-wide
//   default): the dynamic broker settings (the log.* topic defaults and their kin), stored in the metadata log
//   and applied at once to every topic that does not override them; static or unknown settings: INVALID_REQUEST.
//   A broker resource naming another broker is refused by the broker that received it; a broker that is not the
//   active controller forwards the other resources to it and answers with the controller's results.
using Osprey.Broker.Config;
using Osprey.Broker.Control;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class IncrementalAlterConfigsHandler(ConfigUpdater updater, AdminForwarder forwarder)
    : RequestHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>
{
    public const sbyte Set = 0;
    public const sbyte Delete = 1;
    public const sbyte Append = 2;
    public const sbyte Subtract = 3;

    public override ApiKey ApiKey => ApiKey.IncrementalAlterConfigs;

    public override short MinVersion => 0;

    public override short MaxVersion => 1;

    protected override async ValueTask<IncrementalAlterConfigsResponse> HandleAsync(RequestContext context, IncrementalAlterConfigsRequest request, CancellationToken cancellationToken)
    {
        var response = new IncrementalAlterConfigsResponse();
        var forwarded = new List<(IncrementalAlterConfigsRequest.AlterConfigsResource Resource, IncrementalAlterConfigsResponse.AlterConfigsResourceResponse Result)>();
        foreach (var resource in request.Resources)
        {
            var result = new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName };
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

            var (error, message) = await updater.AlterAsync(resource.ResourceType, resource.ResourceName, current => Apply(resource.ResourceType, current, resource.Configs), request.ValidateOnly, cancellationToken).ConfigureAwait(false);
            result.ErrorCode = (short)error;
            result.ErrorMessage = message;
        }

        if (forwarded.Count > 0)
        {
            request.Resources = [.. forwarded.Select(f => f.Resource)];
            await forwarder.ForwardEachAsync<IncrementalAlterConfigsResponse, IncrementalAlterConfigsResponse.AlterConfigsResourceResponse, (sbyte, string)>(
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

    private static (Dictionary<string, string>?, (ErrorCode, string)?) Apply(sbyte resourceType, IReadOnlyDictionary<string, string> current, List<IncrementalAlterConfigsRequest.AlterableConfig> changes)
    {
        var result = current.ToDictionary(StringComparer.Ordinal);
        foreach (var change in changes)
        {
            var definition = ConfigUpdater.Find(resourceType, change.Name);
            if (definition is null)
            {
                return (null, (ErrorCode.InvalidConfig, $"Unknown {(resourceType == Metadata.ClusterImage.BrokerResource ? "broker" : "topic")} config name: {change.Name}"));
            }

            switch (change.ConfigOperation)
            {
                case Set when change.Value is not null:
                    result[change.Name] = change.Value;
                    break;
                case Set:
                    return (null, (ErrorCode.InvalidRequest, $"Null value not supported for : {change.Name}"));
                case Delete:
                    result.Remove(change.Name);
                    break;
                case Append or Subtract when definition.Type == ConfigType.List && change.Value is not null:
                    var items = (result.TryGetValue(change.Name, out var existing) ? existing : definition.Default ?? "")
                        .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
                    var operands = change.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                    items = change.ConfigOperation == Append ? [.. items, .. operands.Where(o => !items.Contains(o))] : [.. items.Where(i => !operands.Contains(i))];
                    result[change.Name] = string.Join(",", items);
                    break;
                case Append or Subtract when definition.Type != ConfigType.List:
                    return (null, (ErrorCode.InvalidConfig, $"Can't {(change.ConfigOperation == Append ? "APPEND" : "SUBTRACT")} to key {change.Name} because its type is not LIST."));
                case Append or Subtract:
                    return (null, (ErrorCode.InvalidRequest, $"Null value not supported for : {change.Name}"));
                default:
                    return (null, (ErrorCode.InvalidConfig, $"Unknown operation type {change.ConfigOperation} for {change.Name}."));
            }
        }

        return (result, null);
    }
}
