// OffsetCommit (key 8), versions 2-10.
//   Commits offsets (with leader epoch and metadata) for a group, written to __consumer_offsets and fsynced before
//   the answer. Generation -1 and no member id: a commit from outside group management, accepted while the group
//   has no members (UNKNOWN_MEMBER_ID otherwise). A member's commit is checked like a heartbeat (UNKNOWN_MEMBER_ID,
//   ILLEGAL_GENERATION, FENCED_INSTANCE_ID; REBALANCE_IN_PROGRESS while assignments are being handed out). Per
//   partition: UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE (over offset.metadata.max.bytes). In a
//   consumer-protocol group the member's epoch must be current (STALE_MEMBER_EPOCH; UNKNOWN_MEMBER_ID). v10 names
//   topics by id (UNKNOWN_TOPIC_ID for an id no topic has).
using Osprey.Broker.Groups;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class OffsetCommitHandler(GroupCoordinator groups, IMetadataQuorum metadata) : RequestHandler<OffsetCommitRequest, OffsetCommitResponse>
{
    public override ApiKey ApiKey => ApiKey.OffsetCommit;

    public override short MinVersion => 2;

    public override short MaxVersion => 10;

    protected override async ValueTask<OffsetCommitResponse> HandleAsync(RequestContext context, OffsetCommitRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        if (context.ApiVersion >= 10)
        {
            // Topics by id: offsets are kept by name, so the ids are resolved first.
            foreach (var topic in request.Topics)
            {
                topic.Name = image.Topic(topic.TopicId)?.Name ?? "";
            }
        }

        var response = await groups.CommitOffsetsAsync(
            request,
            (topic, partition) => image.Topic(topic)?.Partitions.ContainsKey(partition) == true,
            cancellationToken).ConfigureAwait(false);
        if (context.ApiVersion >= 10)
        {
            foreach (var topic in response.Topics.Where(t => t.Name.Length == 0))
            {
                topic.Partitions.ForEach(p => p.ErrorCode = (short)ErrorCode.UnknownTopicId);
            }
        }

        return response;
    }
}
