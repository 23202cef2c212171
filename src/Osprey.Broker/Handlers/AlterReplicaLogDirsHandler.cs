// AlterReplicaLogDirs (key 34), versions 1-2.
//   Osprey keeps every partition in its one data directory (log.dirs): moving a replica to that directory is done
//   already (NONE); to any other path LOG_DIR_NOT_FOUND; an unknown topic or partition UNKNOWN_TOPIC_OR_PARTITION.
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class AlterReplicaLogDirsHandler(IMetadataQuorum metadata, BrokerOptions options) : RequestHandler<AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse>
{
    public override ApiKey ApiKey => ApiKey.AlterReplicaLogDirs;

    public override short MinVersion => 1;

    public override short MaxVersion => 2;

    protected override ValueTask<AlterReplicaLogDirsResponse> HandleAsync(RequestContext context, AlterReplicaLogDirsRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        var dataDirectory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.DataDirectory));
        var response = new AlterReplicaLogDirsResponse();
        foreach (var dir in request.Dirs)
        {
            var here = Path.IsPathFullyQualified(dir.Path) && Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir.Path)) == dataDirectory;
            foreach (var topic in dir.Topics)
            {
                var known = image.Topic(topic.Name);
                response.Results.Add(new AlterReplicaLogDirsResponse.AlterReplicaLogDirTopicResult
                {
                    TopicName = topic.Name,
                    Partitions = [.. topic.Partitions.Select(p => new AlterReplicaLogDirsResponse.AlterReplicaLogDirPartitionResult
                    {
                        PartitionIndex = p,
                        ErrorCode = (short)(known?.Partitions.ContainsKey(p) != true ? ErrorCode.UnknownTopicOrPartition : here ? ErrorCode.None : ErrorCode.LogDirNotFound),
                    })],
                });
            }
        }

        return ValueTask.FromResult(response);
    }
}
