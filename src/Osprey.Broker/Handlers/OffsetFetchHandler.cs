// OffsetFetch (key 9), versions 1-10.
//   A group's committed offsets for the partitions named, or all of them (null topics, v2+); -1 where nothing is
//   committed. v8+ asks for several groups in one request and answers per group. RequireStable (v7+): while a
//   transaction's offsets for the group are pending, UNSTABLE_OFFSET_COMMIT (the client asks again). v9+ members of consumer-protocol groups name themselves
//   and their epoch: UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH when they are not current. v10 names topics by id
//   (UNKNOWN_TOPIC_ID per partition for an id no topic has). A group whose partition is loading:
//   COORDINATOR_LOAD_IN_PROGRESS (per partition before v2, for the group after).
using Osprey.Broker.Groups;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class OffsetFetchHandler(GroupCoordinator groups, IMetadataQuorum metadata) : RequestHandler<OffsetFetchRequest, OffsetFetchResponse>
{
    public override ApiKey ApiKey => ApiKey.OffsetFetch;

    public override short MinVersion => 1;

    public override short MaxVersion => 10;

    protected override async ValueTask<OffsetFetchResponse> HandleAsync(RequestContext context, OffsetFetchRequest request, CancellationToken cancellationToken)
    {
        var response = new OffsetFetchResponse();
        if (context.ApiVersion >= 8)
        {
            var image = metadata.Image;
            var byId = context.ApiVersion >= 10;
            foreach (var group in request.Groups)
            {
                // v10 names topics by id; an id no topic has is answered with UNKNOWN_TOPIC_ID.
                var unknownIds = byId ? group.Topics?.Where(t => image.Topic(t.TopicId) is null).ToList() ?? [] : [];
                var topics = group.Topics?.Except(unknownIds)
                    .Select(t => (byId ? image.Topic(t.TopicId)!.Name : t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList();
                var (error, offsets) = await groups.FetchOffsetsAsync(group.GroupId, topics, cancellationToken, group.MemberId, group.MemberEpoch, request.RequireStable).ConfigureAwait(false);
                var answered = offsets
                    .Where(t => !byId || image.Topic(t.Topic) is not null)
                    .Select(t => new OffsetFetchResponse.OffsetFetchResponseTopics
                    {
                        Name = t.Topic,
                        TopicId = byId ? image.Topic(t.Topic)!.TopicId : Guid.Empty,
                        Partitions = t.Partitions.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = p.Partition,
                            CommittedOffset = p.Offset?.Offset ?? -1,
                            CommittedLeaderEpoch = p.Offset?.LeaderEpoch ?? -1,
                            Metadata = p.Offset?.Metadata ?? "",
                        }).ToList(),
                    })
                    .Concat(unknownIds.Select(t => new OffsetFetchResponse.OffsetFetchResponseTopics
                    {
                        TopicId = t.TopicId,
                        Partitions = t.PartitionIndexes.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = p,
                            CommittedOffset = -1,
                            Metadata = "",
                            ErrorCode = (short)ErrorCode.UnknownTopicId,
                        }).ToList(),
                    }));
                response.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = group.GroupId, ErrorCode = (short)error, Topics = answered.ToList() });
            }

            return response;
        }

        var asked = request.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList();
        var (fetchError, fetched) = await groups.FetchOffsetsAsync(request.GroupId, asked, cancellationToken, requireStable: request.RequireStable).ConfigureAwait(false);
        if (fetchError != ErrorCode.None && context.ApiVersion < 2)
        {
            // v1 has no group-level error: every partition asked for carries it.
            fetched = asked?.Select(t => (t.Name, t.Item2.Select(p => (p, (CommittedOffset?)null)).ToList())).ToList() ?? [];
        }

        response.ErrorCode = context.ApiVersion >= 2 ? (short)fetchError : (short)0;
        response.Topics = fetched.Select(t => new OffsetFetchResponse.OffsetFetchResponseTopic
        {
            Name = t.Topic,
            Partitions = t.Partitions.Select(p => new OffsetFetchResponse.OffsetFetchResponsePartition
            {
                PartitionIndex = p.Partition,
                CommittedOffset = p.Offset?.Offset ?? -1,
                CommittedLeaderEpoch = p.Offset?.LeaderEpoch ?? -1,
                Metadata = p.Offset?.Metadata ?? "",
                ErrorCode = context.ApiVersion < 2 ? (short)fetchError : (short)0,
            }).ToList(),
        }).ToList();
        return response;
    }
}
