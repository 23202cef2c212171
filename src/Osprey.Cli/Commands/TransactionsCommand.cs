using System.CommandLine;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary><c>osprey transactions list|describe</c>: transactional ids, their state, and hanging transactions.</summary>
internal static class TransactionsCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var output = ClientCommand.Output();
        var command = new Command("transactions", "List and describe transactional producers' transactions, and find hanging ones.") { bootstrap, output };
        command.Subcommands.Add(List(bootstrap, output));
        command.Subcommands.Add(Describe(bootstrap, output));
        return command;
    }

    private static Command List(Option<string> bootstrap, Option<string> output)
    {
        var command = new Command("list", "List the transactional ids with their producer id and state; open ones past their timeout are marked hanging.");
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var listed = (await client.ListTransactionsAsync(cancellationToken)).OrderBy(t => t.TransactionalId, StringComparer.Ordinal).ToList();
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var rows = new List<(string Id, long ProducerId, string State, bool Hanging)>();
            foreach (var (id, producerId, state) in listed)
            {
                // Only an open transaction can hang: describe those for their start time and timeout.
                var hanging = state == "Ongoing" && (await client.DescribeTransactionAsync(id, cancellationToken)).IsHanging(now);
                rows.Add((id, producerId, state, hanging));
            }

            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(rows.Select(r => new { transactionalId = r.Id, producerId = r.ProducerId, state = r.State, hanging = r.Hanging }));
                return 0;
            }

            var table = new OutputTable().AddColumns("Transactional id", "Producer id", "State", "");
            foreach (var (id, producerId, state, hanging) in rows)
            {
                table.AddRow(Markup.Escape(id), producerId.ToString(System.Globalization.CultureInfo.InvariantCulture), state, hanging ? "[red]hanging[/]" : "");
            }

            table.Write();
            return 0;
        }));
        return command;
    }

    private static Command Describe(Option<string> bootstrap, Option<string> output)
    {
        var name = new Argument<string>("transactional-id") { Description = "The transactional id." };
        var command = new Command("describe", "Show a transactional id's state, producer id and epoch, timeout, start time and partitions.") { name };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var txn = await client.DescribeTransactionAsync(result.GetValue(name)!, cancellationToken);
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var started = txn.StartTimeMs >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(txn.StartTimeMs).ToString("O", System.Globalization.CultureInfo.InvariantCulture) : null;
            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(new
                {
                    transactionalId = txn.TransactionalId,
                    state = txn.State,
                    producerId = txn.ProducerId,
                    producerEpoch = txn.ProducerEpoch,
                    timeoutMs = txn.TimeoutMs,
                    startTime = started,
                    hanging = txn.IsHanging(now),
                    partitions = txn.Partitions.Select(p => new { topic = p.Topic, partition = p.Partition }),
                });
                return 0;
            }

            AnsiConsole.MarkupLine($"Transactional id [bold]{Markup.Escape(txn.TransactionalId)}[/]  state {txn.State}{(txn.IsHanging(now) ? "  [red]hanging: open longer than its timeout[/]" : "")}");
            AnsiConsole.MarkupLine($"producer {txn.ProducerId} epoch {txn.ProducerEpoch}  timeout {txn.TimeoutMs} ms  started {started ?? "-"}");
            if (txn.Partitions.Count > 0)
            {
                AnsiConsole.MarkupLine("partitions " + Markup.Escape(string.Join(", ", txn.Partitions.Order().Select(p => $"{p.Topic}-{p.Partition}"))));
            }

            return 0;
        }));
        return command;
    }
}
