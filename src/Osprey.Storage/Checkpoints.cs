using System.Globalization;
using System.Text;

namespace Osprey.Storage;

/// <summary>
/// Kafka's checkpoint text files: a version line ("0"), a count line, then one entry per line. Written to a
/// temporary file, fsynced and renamed over the old one, so a crash leaves either the old or the new file.
/// </summary>
public static class Checkpoints
{
    public const string RecoveryPointFile = "recovery-point-offset-checkpoint";
    public const string LogStartOffsetFile = "log-start-offset-checkpoint";
    public const string LeaderEpochFile = "leader-epoch-checkpoint";
    public const string CleanerOffsetFile = "cleaner-offset-checkpoint";
    public const string CleanShutdownFile = ".kafka_cleanshutdown";

    /// <summary>Reads "topic partition offset" entries; a missing file reads as empty.</summary>
    public static Dictionary<(string Topic, int Partition), long> ReadOffsets(string path)
    {
        var result = new Dictionary<(string, int), long>();
        foreach (var fields in ReadEntries(path, 3))
        {
            result[(fields[0], int.Parse(fields[1], CultureInfo.InvariantCulture))] = long.Parse(fields[2], CultureInfo.InvariantCulture);
        }

        return result;
    }

    public static void WriteOffsets(string path, IEnumerable<KeyValuePair<(string Topic, int Partition), long>> entries) =>
        WriteEntries(path, entries.Select(e => $"{e.Key.Topic} {e.Key.Partition.ToString(CultureInfo.InvariantCulture)} {e.Value.ToString(CultureInfo.InvariantCulture)}"));

    /// <summary>Reads "epoch startOffset" entries of a leader-epoch checkpoint.</summary>
    public static List<(int Epoch, long StartOffset)> ReadEpochs(string path) =>
        ReadEntries(path, 2)
            .Select(f => (int.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture)))
            .ToList();

    public static void WriteEpochs(string path, IEnumerable<(int Epoch, long StartOffset)> entries) =>
        WriteEntries(path, entries.Select(e => $"{e.Epoch.ToString(CultureInfo.InvariantCulture)} {e.StartOffset.ToString(CultureInfo.InvariantCulture)}"));

    private static List<string[]> ReadEntries(string path, int fieldCount)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        var lines = File.ReadAllLines(path);
        if (lines.Length < 2 || lines[0].Trim() != "0" || !int.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var count) || lines.Length - 2 < count)
        {
            throw new InvalidDataException($"{path} is not a version 0 checkpoint file.");
        }

        var entries = new List<string[]>(count);
        for (var i = 0; i < count; i++)
        {
            var fields = lines[i + 2].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != fieldCount)
            {
                throw new InvalidDataException($"{path}: line {i + 3} has {fields.Length} fields, expected {fieldCount}.");
            }

            entries.Add(fields);
        }

        return entries;
    }

    private static void WriteEntries(string path, IEnumerable<string> lines)
    {
        var list = lines.ToList();
        var text = new StringBuilder().Append("0\n").Append(list.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var line in list)
        {
            text.Append(line).Append('\n');
        }

        WriteAtomically(path, Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>Writes to path.tmp, fsyncs it, renames it over <paramref name="path"/>.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var temp = path + ".tmp";
        using (var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.Write))
        {
            RandomAccess.Write(handle, content, 0);
            RandomAccess.FlushToDisk(handle);
        }

        File.Move(temp, path, overwrite: true);
        NativeFileSystem.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }
}
