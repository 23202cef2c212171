// ListTransactions (key 66), versions 0-2.
//   Every transactional id with its producer id and state, filtered by state names (unknown names are returned in
//   UnknownStateFilters), by producer ids, v1+ by how long the transaction has been open (DurationFilter ms), and
//   v2+ by a regular expression on the transactional id.
using System.Text.RegularExpressions;
using Osprey.Broker.Transactions;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class ListTransactionsHandler(TransactionCoordinator transactions, BrokerOptions options) : RequestHandler<ListTransactionsRequest, ListTransactionsResponse>
{
    private static readonly string[] StateNames = [.. Enum.GetValues<TransactionState>().Select(TransactionMetadata.StateName)];

    public override ApiKey ApiKey => ApiKey.ListTransactions;

    public override short MinVersion => 0;

    public override short MaxVersion => 2;

    protected override async ValueTask<ListTransactionsResponse> HandleAsync(RequestContext context, ListTransactionsRequest request, CancellationToken cancellationToken)
    {
        Regex? pattern = null;
        if (request.TransactionalIdPattern is { Length: > 0 } text)
        {
            try
            {
                pattern = new Regex(text, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
            }
            catch (ArgumentException)
            {
                return new ListTransactionsResponse { ErrorCode = (short)ErrorCode.InvalidRegularExpression };
            }
        }

        var (error, all) = await transactions.ListAsync(cancellationToken).ConfigureAwait(false);
        var now = options.Time.GetUtcNow().ToUnixTimeMilliseconds();
        var states = request.StateFilters.Where(StateNames.Contains).ToHashSet();
        return new ListTransactionsResponse
        {
            ErrorCode = (short)error,
            UnknownStateFilters = request.StateFilters.Where(s => !StateNames.Contains(s)).ToList(),
            TransactionStates = all
                .Where(t => request.StateFilters.Count == 0 || states.Contains(TransactionMetadata.StateName(t.State)))
                .Where(t => request.ProducerIdFilters.Count == 0 || request.ProducerIdFilters.Contains(t.ProducerId))
                .Where(t => request.DurationFilter < 0 || (t.StartMs >= 0 && now - t.StartMs >= request.DurationFilter))
                .Where(t => pattern is null || Matches(pattern, t.TransactionalId))
                .OrderBy(t => t.TransactionalId, StringComparer.Ordinal)
                .Select(t => new ListTransactionsResponse.TransactionStateData { TransactionalId = t.TransactionalId, ProducerId = t.ProducerId, TransactionState = TransactionMetadata.StateName(t.State) })
                .ToList(),
        };
    }

    private static bool Matches(Regex pattern, string id)
    {
        try
        {
            return pattern.IsMatch(id);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }
}
