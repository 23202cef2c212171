using CsCheck;
using Osprey.Protocol.Generator;

namespace Osprey.Protocol.Tests.Messages;

/// <summary>
/// Hostile input: random bytes and mutations of valid encodings, for every message at every version. Decoding may
/// succeed or throw <see cref="KafkaProtocolException"/>; any other exception (IndexOutOfRange, OutOfMemory,
/// Overflow, NullReference, …) fails. Whatever decodes must encode again without any other exception.
/// The suite runs a short pass; set OSPREY_FUZZ_CASES (e.g. 1000000) for the long run.
/// </summary>
public class FuzzTests
{
    private static readonly int TotalCases = int.TryParse(Environment.GetEnvironmentVariable("OSPREY_FUZZ_CASES"), out var n) ? n : 60_000;

    public static TheoryData<string> Messages()
    {
        var data = new TheoryData<string>();
        foreach (var message in Schemas.All)
        {
            data.Add(message.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Messages))]
    public void DecodingHostileBytesThrowsOnlyProtocolErrors(string messageName)
    {
        var message = Schemas.Get(messageName);
        var versions = message.Versions.Max - message.Versions.Min + 1;
        var perVersion = Math.Max(1, TotalCases / Schemas.All.Count / versions);
        for (var v = message.Versions.Min; v <= message.Versions.Max; v++)
        {
            var version = v;
            var cases = Gen.Frequency(
                (1, Gen.Byte.Array[0, 64]),
                (6, MessageGen.For(message, version).SelectMany(m => Mutate(MessageCodec.Serialize(m, version)))));
            cases.Sample(bytes => DecodeAndReencode(message, bytes, version), iter: perVersion, threads: 1);
        }
    }

    private static Gen<byte[]> Mutate(byte[] valid) =>
        Gen.Int[0, 5].SelectMany(kind => kind switch
        {
            // flip one byte
            0 when valid.Length > 0 => Gen.Select(Gen.Int[0, valid.Length - 1], Gen.Byte, (i, b) => With(valid, i, b)),
            // truncate
            1 => Gen.Int[0, valid.Length].Select(len => valid[..len]),
            // overwrite four bytes with a large or negative length
            2 when valid.Length >= 4 => Gen.Select(
                Gen.Int[0, valid.Length - 4],
                Gen.Int[0, 5].Select(k => new[] { 0x7fffffff, -2, -1, 0x7fff, 0x10000, int.MinValue }[k]),
                (i, value) => WithInt(valid, i, value)),
            // a varint with its continuation bit set everywhere
            3 when valid.Length > 0 => Gen.Int[0, valid.Length - 1].Select(i => WithRun(valid, i, 0xff)),
            // append garbage
            4 => Gen.Byte.Array[1, 8].Select(extra => valid.Concat(extra).ToArray()),
            _ => Gen.Const(valid),
        });

    private static byte[] With(byte[] source, int index, byte value)
    {
        var copy = (byte[])source.Clone();
        copy[index] = value;
        return copy;
    }

    private static byte[] WithInt(byte[] source, int index, int value)
    {
        var copy = (byte[])source.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(index), value);
        return copy;
    }

    private static byte[] WithRun(byte[] source, int index, byte value)
    {
        var copy = (byte[])source.Clone();
        for (var i = index; i < Math.Min(copy.Length, index + 6); i++)
        {
            copy[i] = value;
        }

        return copy;
    }

    private static void DecodeAndReencode(MessageDefinition message, byte[] bytes, short version)
    {
        IKafkaStruct decoded;
        try
        {
            decoded = MessageCodec.Deserialize(Schemas.Create(message), bytes, version);
        }
        catch (KafkaProtocolException)
        {
            return;
        }

        // What decoded is a valid message: it must encode, and to a form that decodes to the same encoding.
        var again = MessageCodec.Serialize(decoded, version);
        var third = MessageCodec.Serialize(MessageCodec.Deserialize(Schemas.Create(message), again, version), version);
        Assert.Equal(Convert.ToHexString(again), Convert.ToHexString(third));
    }
}
