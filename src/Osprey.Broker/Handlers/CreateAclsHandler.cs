// CreateAcls (key 30), versions 1-3.
//   No authorizer is configured: every creation is answered SECURITY_DISABLED, as Kafka does without one.
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class CreateAclsHandler : RequestHandler<CreateAclsRequest, CreateAclsResponse>
{
    public override ApiKey ApiKey => ApiKey.CreateAcls;

    public override short MinVersion => 1;

    public override short MaxVersion => 3;

    protected override ValueTask<CreateAclsResponse> HandleAsync(RequestContext context, CreateAclsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new CreateAclsResponse
        {
            Results = [.. request.Creations.Select(_ => new CreateAclsResponse.AclCreationResult { ErrorCode = (short)ErrorCode.SecurityDisabled, ErrorMessage = NoAuthorizer.Message })],
        });
}
