// DescribeLogDirs (key 35), versions 1-5.
//   One log dir (the data directory) with the size of every partition asked for (null: all topics). Offset lag is 0
//   (no replica is catching up on a single node); v4+ adds the file system's total and usable bytes.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Storage;

namespace Osprey.Broker.Handlers;

public sealed class DescribeLogDirsHandler(IMetadataQuorum metadata, LogManager logs) : RequestHandler<DescribeLogDirsRequest, DescribeLogDirsResponse>
{
    public override ApiKey ApiKey => ApiKey.DescribeLogDirs;

    public override short MinVersion => 1;

    public override short MaxVersion => 5;

    protected override ValueTask<DescribeLogDirsResponse> HandleAsync(RequestContext context, DescribeLogDirsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var result = new DescribeLogDirsResponse.DescribeLogDirsResult { LogDir = logs.DataDirectory };
        if (context.ApiVersion >= 4)
        {
            var drive = new DriveInfo(logs.DataDirectory);
            result.TotalBytes = drive.TotalSize;
            result.UsableBytes = drive.AvailableFreeSpace;
        }

        var asked = request.Topics?.Select(t => (t.Topic, (IEnumerable<int>)t.Partitions))
            ?? image.Topics.Values.Select(t => (t.Name, (IEnumerable<int>)t.Partitions.Keys));
        foreach (var (name, partitions) in asked)
        {
            var topic = new DescribeLogDirsResponse.DescribeLogDirsTopic { Name = name };
            foreach (var partition in partitions)
            {
                if (image.Topic(name) is not null && logs.Get(name, partition) is { } log)
                {
                    topic.Partitions.Add(new DescribeLogDirsResponse.DescribeLogDirsPartition { PartitionIndex = partition, PartitionSize = log.Size });
                }
            }

            if (topic.Partitions.Count > 0)
            {
                result.Topics.Add(topic);
            }
        }

        return ValueTask.FromResult(new DescribeLogDirsResponse { Results = [result] });
    }
}
