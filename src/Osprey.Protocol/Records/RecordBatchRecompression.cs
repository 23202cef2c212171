using System.Buffers;
using Osprey.Protocol.Records.Compression;

namespace Osprey.Protocol.Records;

/// <summary>
/// Rewrites record batches with another codec, as a topic whose compression.type is not <c>producer</c> stores
/// them. Everything but the compression stays: offsets, timestamps, producer id, epoch, sequence, the
/// transactional flag, and each record's key, value and headers byte for byte. Control batches and batches
/// already in the target codec are kept as they are.
/// </summary>
public static class RecordBatchRecompression
{
    /// <summary>True when some batch in <paramref name="batches"/> is not in <paramref name="target"/> and would be rewritten.</summary>
    public static bool IsNeeded(ReadOnlySpan<byte> batches, CompressionType target)
    {
        foreach (var batch in RecordBatch.Enumerate(batches))
        {
            if (!batch.Header.IsControlBatch && batch.Header.Compression != target)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The batches with every data batch in <paramref name="target"/>; a new array.</summary>
    public static byte[] Recompress(ReadOnlySpan<byte> batches, CompressionType target, int? level = null, int maxDecompressedSize = RecordCompression.DefaultMaxDecompressedSize)
    {
        using var output = new PooledBufferWriter(batches.Length);
        using var decompressed = new PooledBufferWriter(0);
        using var builder = new RecordBatchBuilder(target, level);
        foreach (var batch in RecordBatch.Enumerate(batches))
        {
            var header = batch.Header;
            if (header.IsControlBatch || header.Compression == target)
            {
                output.Write(batch.Bytes);
                continue;
            }

            builder.ResetFor(header);
            foreach (var record in batch.GetRecords(decompressed, maxDecompressedSize))
            {
                builder.Append(record);
            }

            builder.LastOffsetDelta = header.LastOffsetDelta;
            builder.WriteTo(output);
        }

        return output.WrittenSpan.ToArray();
    }
}
