// ListOffsets (key 2), versions 1-11.
//   Timestamp -2 earliest (log start offset), -1 latest (the high watermark, or the last stable offset for
//   read_committed), -3 (v7+) the record with the largest timestamp, -4 (v8+) earliest local (the same here),
//   -5 (v9+) earliest pending upload (the same here); otherwise the first record whose timestamp is at least the
//   one given, or -1/-1 when none is (or, under read_committed, when it lies at or beyond the last stable offset).
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class ListOffsetsHandler(IMetadataQuorum metadata, LogManager logs) : RequestHandler<ListOffsetsRequest, ListOffsetsResponse>
{
    public const long Latest = -1;
    public const long Earliest = -2;
    public const long MaxTimestamp = -3;
    public const long EarliestLocal = -4;
    public const long EarliestPendingUpload = -5;

    public override ApiKey ApiKey => ApiKey.ListOffsets;

    public override short MinVersion => 1;

    public override short MaxVersion => 11;

    protected override ValueTask<ListOffsetsResponse> HandleAsync(RequestContext context, ListOffsetsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var response = new ListOffsetsResponse();
        foreach (var topic in request.Topics)
        {
            var topicResponse = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            var topicImage = image.Topic(topic.Name);
            foreach (var partition in topic.Partitions)
            {
                var result = new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = partition.PartitionIndex };
                topicResponse.Partitions.Add(result);
                var log = topicImage is null ? null : logs.Get(topic.Name, partition.PartitionIndex);
                if (log is null)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }

                if (context.ApiVersion >= 4)
                {
                    result.LeaderEpoch = topicImage!.Partitions.TryGetValue(partition.PartitionIndex, out var p) ? p.LeaderEpoch : -1;
                }
                var readCommitted = request.IsolationLevel == 1;
                var found = partition.Timestamp switch
                {
                    Latest => new TimestampAndOffset(-1, readCommitted ? log.LastStableOffset : log.LogEndOffset),
                    Earliest or EarliestLocal or EarliestPendingUpload => new TimestampAndOffset(-1, log.LogStartOffset),
                    MaxTimestamp => log.MaxTimestampAndOffset() ?? new TimestampAndOffset(-1, -1),
                    < 0 => (TimestampAndOffset?)null,
                    var t => log.OffsetForTimestamp(t) ?? new TimestampAndOffset(-1, -1),
                };
                if (found is null)
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    continue;
                }

                if (readCommitted && partition.Timestamp is MaxTimestamp or >= 0 && found.Value.Offset >= log.LastStableOffset)
                {
                    found = new TimestampAndOffset(-1, -1); // not readable yet under read_committed
                }

                result.Timestamp = found.Value.Timestamp;
                result.Offset = found.Value.Offset;
            }
        }

        return ValueTask.FromResult(response);
    }
}
