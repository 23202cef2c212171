using System.Text;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary>
/// A table of command output: drawn by Spectre.Console on a terminal; written as plain, unwrapped lines (columns
/// padded with spaces, no borders, no markup) when stdout is a pipe or a file, so that grep, awk and cut see whole
/// values (a terminal-width table cut topic ids and config names in half).
/// </summary>
internal sealed class OutputTable
{
    private readonly List<string> _columns = [];
    private readonly List<string[]> _rows = [];

    public OutputTable AddColumns(params string[] columns)
    {
        _columns.AddRange(columns);
        return this;
    }

    /// <summary>Adds a row of Spectre markup cells (escape plain text with <see cref="Markup.Escape"/>).</summary>
    public OutputTable AddRow(params string[] cells)
    {
        _rows.Add(cells);
        return this;
    }

    public void Write()
    {
        if (!Console.IsOutputRedirected)
        {
            var table = new OutputTable().AddColumns(_columns.ToArray());
            foreach (var row in _rows)
            {
                table.AddRow(row);
            }

            table.Write();
            return;
        }

        var lines = new List<string[]> { _columns.ToArray() };
        lines.AddRange(_rows.Select(r => r.Select(Markup.Remove).ToArray()));
        var widths = Enumerable.Range(0, _columns.Count).Select(i => lines.Max(l => i < l.Length ? l[i].Length : 0)).ToArray();
        var text = new StringBuilder();
        foreach (var line in lines)
        {
            for (var i = 0; i < line.Length; i++)
            {
                text.Append(i == line.Length - 1 ? line[i] : line[i].PadRight(widths[i] + 2));
            }

            Console.Out.WriteLine(text.ToString().TrimEnd());
            text.Clear();
        }
    }
}
