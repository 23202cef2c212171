using System.Globalization;
using System.Text;
using Osprey.Storage;

namespace Osprey.Metadata;

/// <summary>A data directory's identity refused at start: the message says what does not match.</summary>
public sealed class DataDirectoryMismatchException(string message) : Exception(message);

/// <summary>
/// The data directory's <c>meta.properties</c>, in Kafka's KRaft form (version=1, cluster.id, node.id, directory.id):
/// written at first start with a random cluster id, read at every later start. A directory that belongs to another
/// node stops the start instead of being served under a wrong identity.
/// </summary>
public sealed record MetaProperties(string ClusterId, int NodeId, string DirectoryId)
{
    public const string FileName = "meta.properties";

    /// <summary>True when this start wrote the file: a new data directory (or one from before Osprey wrote it).</summary>
    public bool Created { get; init; }

    /// <summary>A random UUID in Kafka's form: URL-safe base64 of its 16 bytes, without padding (22 characters).</summary>
    public static string NewKafkaUuid() => ToKafkaString(Guid.NewGuid());

    /// <summary>A topic id (or any UUID) the way Kafka's tools print it.</summary>
    public static string ToKafkaString(Guid id)
    {
        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>
    /// Reads the directory's identity, or writes a new one when the file is missing (first start, or a directory
    /// from before Osprey wrote one). Throws <see cref="DataDirectoryMismatchException"/> when the file names
    /// another node, and when it cannot be read.
    /// </summary>
    public static MetaProperties LoadOrCreate(string dataDirectory, int nodeId) =>
        Load(dataDirectory, nodeId) ?? Create(dataDirectory, nodeId, NewKafkaUuid());

    /// <summary>
    /// Writes a new directory's identity with the cluster id it joins (a cluster node learns it from its quorum).
    /// </summary>
    public static MetaProperties Create(string dataDirectory, int nodeId, string clusterId)
    {
        var created = new MetaProperties(clusterId, nodeId, NewKafkaUuid()) { Created = true };
        Checkpoints.WriteAtomically(Path.Combine(dataDirectory, FileName), Encoding.UTF8.GetBytes(created.Render()));
        return created;
    }

    /// <summary>
    /// The directory's identity, or null when it has none yet. Throws <see cref="DataDirectoryMismatchException"/>
    /// when the file names another node, and when it cannot be read.
    /// </summary>
    public static MetaProperties? Load(string dataDirectory, int nodeId)
    {
        var path = Path.Combine(dataDirectory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(path))
        {
            var trimmed = line.Trim();
            var equals = trimmed.IndexOf('=', StringComparison.Ordinal);
            if (trimmed.Length > 0 && trimmed[0] != '#' && equals > 0)
            {
                values[trimmed[..equals].Trim()] = trimmed[(equals + 1)..].Trim();
            }
        }

        if (!values.TryGetValue("cluster.id", out var clusterId) || clusterId.Length == 0
            || !values.TryGetValue("node.id", out var storedNode) || !int.TryParse(storedNode, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var stored))
        {
            throw new DataDirectoryMismatchException($"{path} has no valid cluster.id and node.id; it is not a data directory Osprey can use as it is.");
        }

        if (stored != nodeId)
        {
            throw new DataDirectoryMismatchException($"{path} belongs to node {stored}, but this broker is node.id {nodeId}: start it with node.id={stored}, or give it another data directory.");
        }

        return new MetaProperties(clusterId, stored, values.GetValueOrDefault("directory.id") ?? NewKafkaUuid());
    }

    private string Render() =>
        $"#\n#Written by Osprey {DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}\ncluster.id={ClusterId}\ndirectory.id={DirectoryId}\nnode.id={NodeId.ToString(CultureInfo.InvariantCulture)}\nversion=1\n";
}
