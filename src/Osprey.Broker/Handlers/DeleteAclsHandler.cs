// DeleteAcls (key 31), versions 1-3.
//   No authorizer is configured: every filter is answered SECURITY_DISABLED with no matches, as Kafka does without one.
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DeleteAclsHandler : RequestHandler<DeleteAclsRequest, DeleteAclsResponse>
{
    public override ApiKey ApiKey => ApiKey.DeleteAcls;

    public override short MinVersion => 1;

    public override short MaxVersion => 3;

    protected override ValueTask<DeleteAclsResponse> HandleAsync(RequestContext context, DeleteAclsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new DeleteAclsResponse
        {
            FilterResults = [.. request.Filters.Select(_ => new DeleteAclsResponse.DeleteAclsFilterResult { ErrorCode = (short)ErrorCode.SecurityDisabled, ErrorMessage = NoAuthorizer.Message })],
        });
}
