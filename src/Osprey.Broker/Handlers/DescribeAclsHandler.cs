// DescribeAcls (key 29), versions 1-3.
//   No authorizer is configured (ACLs arrive with the security work), so the answer is what Kafka gives without one:
//   SECURITY_DISABLED and no resources.
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class DescribeAclsHandler : RequestHandler<DescribeAclsRequest, DescribeAclsResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeAcls;

    public override short MinVersion => 1;

    public override short MaxVersion => 3;

    protected override ValueTask<DescribeAclsResponse> HandleAsync(RequestContext context, DescribeAclsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new DescribeAclsResponse { ErrorCode = (short)ErrorCode.SecurityDisabled, ErrorMessage = NoAuthorizer.OnBroker });
}

/// <summary>What the ACL APIs answer while no authorizer is configured (Kafka's wording).</summary>
internal static class NoAuthorizer
{
    public const string Message = "No Authorizer is configured.";

    public const string OnBroker = "No Authorizer is configured on the broker";
}
