using System.Security.Cryptography;
using System.Text;

namespace Osprey.Broker.Security;

/// <summary>
/// The SCRAM mechanisms Kafka knows (RFC 5802 with RFC 7677's SHA-256 and SHA-512), numbered as the SCRAM credential
/// APIs number them, with Kafka's iteration bounds, and the keys a server keeps instead of the password.
/// </summary>
public sealed class ScramMechanism
{
    public static readonly ScramMechanism Sha256 = new(1, "SCRAM-SHA-256", HashAlgorithmName.SHA256);
    public static readonly ScramMechanism Sha512 = new(2, "SCRAM-SHA-512", HashAlgorithmName.SHA512);

    private static readonly byte[] ClientKeyLabel = Encoding.ASCII.GetBytes("Client Key");
    private static readonly byte[] ServerKeyLabel = Encoding.ASCII.GetBytes("Server Key");

    private ScramMechanism(sbyte id, string name, HashAlgorithmName hash)
    {
        Id = id;
        Name = name;
        Hash = hash;
    }

    public sbyte Id { get; }

    public string Name { get; }

    public HashAlgorithmName Hash { get; }

    /// <summary>Fewer iterations than this make a credential too cheap to attack (Kafka's bound).</summary>
    public int MinIterations => 4096;

    public int MaxIterations => 16384;

    public static ScramMechanism? FromId(sbyte id) => id switch
    {
        1 => Sha256,
        2 => Sha512,
        _ => null,
    };

    /// <summary>StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey = HMAC(SaltedPassword, "Server Key").</summary>
    public (byte[] StoredKey, byte[] ServerKey) Keys(ReadOnlySpan<byte> saltedPassword)
    {
        var clientKey = CryptographicOperations.HmacData(Hash, saltedPassword, ClientKeyLabel);
        var storedKey = CryptographicOperations.HashData(Hash, clientKey);
        var serverKey = CryptographicOperations.HmacData(Hash, saltedPassword, ServerKeyLabel);
        return (storedKey, serverKey);
    }

    /// <summary>Hi(password, salt, iterations) of RFC 5802: PBKDF2 with the mechanism's HMAC.</summary>
    public byte[] SaltPassword(string password, ReadOnlySpan<byte> salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, Hash, Hash == HashAlgorithmName.SHA256 ? 32 : 64);
}
