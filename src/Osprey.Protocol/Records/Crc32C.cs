using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Osprey.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of record batch v2. <see cref="BitOperations.Crc32C(uint, ulong)"/> is the
/// raw update step (hardware instruction where available), so the usual pre- and post-inversion happen here.
/// </summary>
/// <remarks>
/// The crc32 instruction takes three cycles but a new one can start every cycle, so one dependent chain of steps
/// runs at a third of the hardware's speed. Inputs of at least <see cref="ChunkBytes"/> bytes are therefore
/// checksummed as three independent lanes of <see cref="LaneBytes"/> bytes each, joined afterwards. The raw update
/// is linear over GF(2): <c>Update(s, D) = Shift(s, |D|) ^ Update(0, D)</c>, where <c>Shift(s, n)</c> is the
/// state after n zero bytes. So a chunk D0‖D1‖D2 continues state s as
/// <c>Shift(Update(s, D0), 2L) ^ Shift(Update(0, D1), L) ^ Update(0, D2)</c>. Each shift is linear in s and is
/// applied with four 256-entry tables built once from the scalar step itself.
/// </remarks>
public static class Crc32C
{
    /// <summary>Bytes per lane of the three-lane loop.</summary>
    public const int LaneBytes = 1024;

    /// <summary>Bytes one round of the three-lane loop consumes.</summary>
    public const int ChunkBytes = 3 * LaneBytes;

    private const uint Seed = 0xFFFFFFFF;

    private static readonly uint[] ShiftOneLane = ShiftTable(LaneBytes);
    private static readonly uint[] ShiftTwoLanes = ShiftTable(2 * LaneBytes);

    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(Seed, data);

    /// <summary>
    /// Continues a raw (not inverted) CRC state, for checksums computed over several spans:
    /// <c>~Update(Update(0xFFFFFFFF, a), b)</c> equals <c>Compute(a + b)</c>.
    /// </summary>
    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        if (data.Length >= ChunkBytes && BitConverter.IsLittleEndian)
        {
            var chunks = data.Length / ChunkBytes;
            state = UpdateThreeLanes(state, MemoryMarshal.Cast<byte, ulong>(data[..(chunks * ChunkBytes)]), chunks);
            data = data[(chunks * ChunkBytes)..];
        }

        return UpdateScalar(state, data);
    }

    private static uint UpdateScalar(uint state, ReadOnlySpan<byte> data)
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

    private static uint UpdateThreeLanes(uint state, ReadOnlySpan<ulong> words, int chunks)
    {
        const int LaneWords = LaneBytes / sizeof(ulong);
        ref var word = ref MemoryMarshal.GetReference(words);
        for (var chunk = 0; chunk < chunks; chunk++)
        {
            var a = state;
            var b = 0u;
            var c = 0u;
            for (var i = 0; i < LaneWords; i++)
            {
                a = BitOperations.Crc32C(a, Unsafe.Add(ref word, i));
                b = BitOperations.Crc32C(b, Unsafe.Add(ref word, LaneWords + i));
                c = BitOperations.Crc32C(c, Unsafe.Add(ref word, (2 * LaneWords) + i));
            }

            state = Shift(ShiftTwoLanes, a) ^ Shift(ShiftOneLane, b) ^ c;
            word = ref Unsafe.Add(ref word, 3 * LaneWords);
        }

        return state;
    }

    private static uint Shift(uint[] table, uint state) =>
        table[(int)(state & 0xFF)] ^ table[256 + (int)((state >> 8) & 0xFF)] ^ table[512 + (int)((state >> 16) & 0xFF)] ^ table[768 + (int)(state >> 24)];

    /// <summary>
    /// Tables for <c>Shift(s, zeroBytes)</c>: entry <c>256·k + v</c> is the shift of the state whose byte k is v and
    /// whose other bytes are zero. Shifting is linear, so the shift of any state is the XOR of its four bytes' entries.
    /// </summary>
    private static uint[] ShiftTable(int zeroBytes)
    {
        Span<uint> bit = stackalloc uint[32];
        for (var i = 0; i < 32; i++)
        {
            var s = 1u << i;
            for (var n = 0; n < zeroBytes / sizeof(ulong); n++)
            {
                s = BitOperations.Crc32C(s, 0UL);
            }

            bit[i] = s;
        }

        var table = new uint[4 * 256];
        for (var k = 0; k < 4; k++)
        {
            for (var v = 1; v < 256; v++)
            {
                var shifted = 0u;
                for (var j = 0; j < 8; j++)
                {
                    if ((v & (1 << j)) != 0)
                    {
                        shifted ^= bit[(8 * k) + j];
                    }
                }

                table[(256 * k) + v] = shifted;
            }
        }

        return table;
    }
}
