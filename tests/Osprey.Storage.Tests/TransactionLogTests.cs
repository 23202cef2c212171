using System.Text;
using Osprey.Protocol;
using Osprey.Protocol.Records;

namespace Osprey.Storage.Tests;

/// <summary>
/// Transactions on a partition log: the last stable offset, ABORT markers indexed in the segment's .txnindex,
/// the aborted transactions a read_committed fetch is told about, and all of it after a restart or a crash.
/// </summary>
public class TransactionLogTests
{
    private static PartitionLog Open(TempDirectory dir, ManualTimeProvider time, LogConfig? config = null, bool clean = false, long recoveryPoint = 0) =>
        PartitionLog.Open(Path.Combine(dir.Path, "txn-0"), "txn", 0, config ?? new LogConfig(), time, recoveryPoint, 0, clean);

    private static byte[] Transactional(long producerId, int sequence, int count, bool transactional = true)
    {
        using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = 0, BaseSequence = sequence, IsTransactional = transactional };
        for (var i = 0; i < count; i++)
        {
            builder.Append(1_700_000_000_000, null, Encoding.UTF8.GetBytes($"p{producerId}-{sequence + i}"));
        }

        return builder.ToArray();
    }

    private static AppendResult Marker(PartitionLog log, long producerId, ControlRecordType type) =>
        log.Append(ControlRecords.CreateEndTransactionMarkerBatch(new(type, 0), producerId, 0, 1_700_000_000_000), AppendOrigin.Coordinator);

    [Fact]
    public void TheLastStableOffsetStaysBelowTheOldestOpenTransaction()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider());
        log.Append(Transactional(9, 0, 2, transactional: false)); // 0-1, not transactional
        Assert.Equal(2, log.LastStableOffset);
        log.Append(Transactional(1, 0, 2));                       // 2-3, producer 1 opens a transaction
        log.Append(Transactional(2, 0, 3));                       // 4-6, producer 2 too
        log.Append(Transactional(1, 2, 1));                       // 7
        Assert.Equal((8L, 2L), (log.LogEndOffset, log.LastStableOffset));

        var commit = Marker(log, 1, ControlRecordType.Commit);    // 8
        Assert.Equal(8, commit.FirstOffset);
        Assert.Equal(4, log.LastStableOffset);                    // producer 2's transaction is still open
        var abort = Marker(log, 2, ControlRecordType.Abort);      // 9
        Assert.Equal(10, log.LastStableOffset);

        Assert.Equal([new AbortedTransaction(2, 4, 9, 10)], log.AbortedTransactions(0, 10));
        Assert.Empty(log.AbortedTransactions(10, 20));             // marker before the range
        Assert.Empty(log.AbortedTransactions(0, 4));               // the transaction starts at the bound
        Assert.Equal(abort.FirstOffset, Assert.Single(log.AbortedTransactions(5, 6)).LastOffset);
        Assert.Equal([(2L, 4L)], log.Segments.SelectMany(s => s.TxnIndex.Entries).Select(e => (e.ProducerId, e.FirstOffset)));
    }

    [Fact]
    public void ClientsCannotWriteControlBatches()
    {
        using var dir = new TempDirectory();
        using var log = Open(dir, new ManualTimeProvider());
        var e = Assert.Throws<KafkaProtocolException>(() => log.Append(ControlRecords.CreateEndTransactionMarkerBatch(new(ControlRecordType.Commit, 0), 1, 0, 1)));
        Assert.Equal(ErrorCode.InvalidRecord, e.ErrorCode);
        Assert.Equal(0, log.LogEndOffset);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OpenTransactionsAndAbortedOnesSurviveARestart(bool clean)
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var config = new LogConfig { SegmentBytes = 300 };
        var log = Open(dir, time, config);
        log.Append(Transactional(1, 0, 3));                       // 0-2
        Marker(log, 1, ControlRecordType.Abort);                  // 3
        for (var i = 0; i < 6; i++)
        {
            log.Append(Transactional(5, i * 2, 2, transactional: false)); // rolls segments
        }

        log.Append(Transactional(2, 0, 2));                       // an open transaction at the end
        var open = log.LogEndOffset - 2;
        log.Flush(log.LogEndOffset);
        if (clean)
        {
            log.Close();
        }

        log.Dispose();
        using var reopened = Open(dir, time, config, clean, recoveryPoint: clean ? open + 2 : 0);
        Assert.Equal(open, reopened.LastStableOffset);
        Assert.Equal([new AbortedTransaction(1, 0, 3, 4)], reopened.AbortedTransactions(0, reopened.LogEndOffset));
    }

    [Fact]
    public void ALostIndexIsRebuiltFromTheAbortMarkersAfterACrash()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        var log = Open(dir, time);
        log.Append(Transactional(3, 0, 2));                       // 0-1
        Marker(log, 3, ControlRecordType.Abort);                  // 2
        log.Append(Transactional(4, 0, 1));                       // 3
        Marker(log, 4, ControlRecordType.Commit);                 // 4
        log.Flush(log.LogEndOffset);
        log.Dispose();
        var index = Directory.GetFiles(Path.Combine(dir.Path, "txn-0"), "*" + LogSegment.TxnIndexSuffix);
        Assert.Equal(TransactionIndex.EntrySize, new FileInfo(Assert.Single(index)).Length);
        File.Delete(index[0]);

        using var reopened = Open(dir, time);
        Assert.Equal([new AbortedTransaction(3, 0, 2, 3)], reopened.AbortedTransactions(0, 5));
        Assert.Equal(5, reopened.LastStableOffset);
    }

    [Fact]
    public void TheIndexFileHasKafkasLayout()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "00000000000000000000" + LogSegment.TxnIndexSuffix);
        TransactionIndex.Open(path).Append(new AbortedTransaction(0x0102030405060708, 16, 33, 34));

        Assert.Equal(
            Convert.FromHexString("0000" + "0102030405060708" + "0000000000000010" + "0000000000000021" + "0000000000000022"),
            File.ReadAllBytes(path));
        var reread = TransactionIndex.Open(path);
        Assert.Equal(new AbortedTransaction(0x0102030405060708, 16, 33, 34), Assert.Single(reread.Entries));
    }
}
