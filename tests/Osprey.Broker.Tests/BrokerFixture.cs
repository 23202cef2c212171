using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;

namespace Osprey.Broker.Tests;

/// <summary>A broker on a free loopback port with its own data directory.</summary>
internal sealed class TestBroker : IAsyncDisposable
{
    private readonly string _dataDir;

    private TestBroker(BrokerServer server, string dataDir)
    {
        Server = server;
        _dataDir = dataDir;
    }

    public BrokerServer Server { get; }

    public string Bootstrap => $"127.0.0.1:{Server.Port}";

    public static async Task<TestBroker> StartAsync(Func<BrokerOptions, BrokerOptions>? configure = null)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "osprey-broker-test-" + Guid.NewGuid().ToString("N"));
        var options = new BrokerOptions { Listener = new IPEndPoint(IPAddress.Loopback, 0), DataDirectory = dataDir };
        options = configure?.Invoke(options) ?? options;
        return new TestBroker(await BrokerServer.StartAsync(options, new TestOutputLoggerProvider()), options.DataDirectory);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, recursive: true);
        }
    }
}

/// <summary>A raw Kafka connection for protocol-level tests.</summary>
internal sealed class RawConnection : IDisposable
{
    private readonly TcpClient _client = new();
    private NetworkStream _stream = null!;

    public static async Task<RawConnection> OpenAsync(int port)
    {
        var connection = new RawConnection();
        await connection._client.ConnectAsync(IPAddress.Loopback, port);
        connection._stream = connection._client.GetStream();
        return connection;
    }

    public Task SendRawAsync(byte[] bytes) => _stream.WriteAsync(bytes).AsTask();

    /// <summary>Encodes a request with its header and size prefix.</summary>
    public static byte[] Frame(IApiMessage request, short version, int correlationId, string? clientId = "raw-test") =>
        MessageCodec.FrameRequest(request, version, correlationId, clientId);

    public Task SendAsync(IApiMessage request, short version, int correlationId) => SendRawAsync(Frame(request, version, correlationId));

    /// <summary>Reads one response frame; null when the broker closed the connection.</summary>
    public async Task<byte[]?> ReceiveFrameAsync()
    {
        var size = new byte[4];
        try
        {
            await _stream.ReadExactlyAsync(size, TestContext.Current.CancellationToken);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            return null;
        }

        var body = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        await _stream.ReadExactlyAsync(body, TestContext.Current.CancellationToken);
        return body;
    }

    /// <summary>Reads a response: correlation id and body decoded at the version.</summary>
    public async Task<(int CorrelationId, T Body)> ReceiveAsync<T>(short version)
        where T : IApiMessage, new()
    {
        var frame = await ReceiveFrameAsync() ?? throw new IOException("connection closed");
        var body = new T();
        var reader = new KafkaReader(frame);
        var header = new ResponseHeader();
        header.Read(ref reader, ApiMessages.ResponseHeaderVersion(body.ApiKey, version));
        body.Read(ref reader, version);
        Assert.True(reader.IsAtEnd);
        return (header.CorrelationId, body);
    }

    public void Dispose() => _client.Dispose();
}
