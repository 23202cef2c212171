using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Osprey.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of record batch v2. <see cref="BitOperations.Crc32C(uint, ulong)"/> is the
/// raw update step (hardware instruction where available), so the usual pre- and post-inversion happen here.
/// </summary>
public static class Crc32C
{
    private const uint Seed = 0xFFFFFFFF;

    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(Seed, data);

    /// <summary>
    /// Continues a raw (not inverted) CRC state, for checksums computed over several spans:
    /// <c>~Update(Update(0xFFFFFFFF, a), b)</c> equals <c>Compute(a + b)</c>.
    /// </summary>
    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        // CRC-32C is bit-reflected: feeding a little-endian ulong equals feeding its 8 bytes in order.
        foreach (var word in MemoryMarshal.Cast<byte, ulong>(data))
        {
            state = BitOperations.Crc32C(state, BitConverter.IsLittleEndian ? word : BinaryPrimitives.ReverseEndianness(word));
        }

        foreach (var b in data[(data.Length & ~7)..])
        {
            state = BitOperations.Crc32C(state, b);
        }

        return state;
    }
}
