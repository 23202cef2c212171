using System.Globalization;

namespace Osprey.Metadata;

/// <summary>One voter of the metadata quorum, as <c>controller.quorum.voters</c> names it: <c>ID@HOST:PORT</c>.</summary>
public sealed record QuorumVoter(int Id, string Host, int Port)
{
    public override string ToString() => $"{Id}@{(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}";

    /// <summary>
    /// Parses a <c>controller.quorum.voters</c> value (comma-separated <c>ID@HOST:PORT</c>; IPv6 hosts in brackets).
    /// Throws <see cref="FormatException"/> with a message naming the bad entry.
    /// </summary>
    public static IReadOnlyList<QuorumVoter> ParseList(string? text)
    {
        var voters = new List<QuorumVoter>();
        foreach (var entry in (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var at = entry.IndexOf('@', StringComparison.Ordinal);
            var colon = entry.LastIndexOf(':');
            if (at <= 0 || colon < at + 2
                || !int.TryParse(entry.AsSpan(0, at), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                || !int.TryParse(entry.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
                || port is 0 or > 65535)
            {
                throw new FormatException($"'{entry}' is not a voter: each must look like ID@HOST:PORT, e.g. 1@127.0.0.1:9093.");
            }

            var host = entry[(at + 1)..colon].Trim('[', ']');
            if (voters.Any(v => v.Id == id))
            {
                throw new FormatException($"node {id} is named twice.");
            }

            voters.Add(new QuorumVoter(id, host, port));
        }

        return voters;
    }
}
