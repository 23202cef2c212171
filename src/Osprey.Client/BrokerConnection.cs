using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Osprey.Protocol;
using Osprey.Protocol.Messages;
using Osprey.Protocol.Primitives;

namespace Osprey.Client;

/// <summary>
/// One TCP connection to a broker. Requests are pipelined: each gets a correlation id and its response is matched
/// by it, so many can be in flight. The API versions both sides support are learned at connect (ApiVersions) and
/// every request goes out at the highest common version the client knows how to fill.
/// </summary>
public sealed class BrokerConnection : IAsyncDisposable
{
    /// <summary>Responses larger than this are refused (the connection is broken, not the process).</summary>
    public const int MaxResponseBytes = 512 * 1024 * 1024;

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly string _clientId;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _frame = new(64 * 1024);
    private readonly ConcurrentDictionary<int, TaskCompletionSource<byte[]>> _pending = new();
    private readonly CancellationTokenSource _closed = new();
    private Dictionary<ApiKey, (short Min, short Max)> _brokerVersions = [];
    private int _nextCorrelationId;
    private Task _reader = Task.CompletedTask;

    private BrokerConnection(TcpClient tcp, string host, int port, string clientId)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _clientId = clientId;
        Host = host;
        Port = port;
    }

    public string Host { get; }

    public int Port { get; }

    public static async Task<BrokerConnection> ConnectAsync(string host, int port, string clientId, CancellationToken cancellationToken)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(host, port, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            tcp.Dispose();
            throw new KafkaException(ErrorCode.NetworkException, $"Cannot reach {host}:{port}: {e.Message}", e);
        }

        var connection = new BrokerConnection(tcp, host, port, clientId);
        connection._reader = Task.Run(connection.ReadLoopAsync, CancellationToken.None);
        var versions = await connection.SendAsync<ApiVersionsResponse>(
            new ApiVersionsRequest { ClientSoftwareName = "osprey-client", ClientSoftwareVersion = "1.0" }, 3, cancellationToken).ConfigureAwait(false);
        KafkaException.ThrowIfError(versions.ErrorCode, $"ApiVersions from {host}:{port}");
        connection._brokerVersions = versions.ApiKeys.ToDictionary(k => (ApiKey)k.ApiKey, k => (k.MinVersion, k.MaxVersion));
        return connection;
    }

    /// <summary>
    /// The version to use for <paramref name="key"/>: the highest the broker and <paramref name="clientMax"/> both
    /// allow. Throws UNSUPPORTED_VERSION when the ranges do not meet.
    /// </summary>
    public short VersionFor(ApiKey key, short clientMax, short clientMin = 0)
    {
        if (!_brokerVersions.TryGetValue(key, out var range) || range.Min > clientMax || range.Max < clientMin)
        {
            throw new KafkaException(ErrorCode.UnsupportedVersion, $"The broker at {Host}:{Port} does not support {key} at versions {clientMin}-{clientMax}.");
        }

        return Math.Min(range.Max, clientMax);
    }

    public bool Supports(ApiKey key) => _brokerVersions.ContainsKey(key);

    /// <summary>The APIs and version ranges the broker advertised in its ApiVersions answer.</summary>
    public IReadOnlyDictionary<ApiKey, (short Min, short Max)> BrokerVersions => _brokerVersions;

    /// <summary>True once the connection has failed or been closed: make a new one.</summary>
    public bool IsBroken => _reader.IsCompleted || _closed.IsCancellationRequested;

    /// <summary>Sends <paramref name="request"/> at <paramref name="version"/> and decodes the response.</summary>
    public async Task<TResponse> SendAsync<TResponse>(IApiMessage request, short version, CancellationToken cancellationToken)
        where TResponse : IApiMessage, new()
    {
        var frame = await SendFrameAsync(request, version, expectResponse: true, cancellationToken).ConfigureAwait(false);
        var response = new TResponse();
        var reader = new KafkaReader(frame);
        new ResponseHeader().Read(ref reader, ApiMessages.ResponseHeaderVersion(response.ApiKey, version));
        response.Read(ref reader, version);
        return response;
    }

    /// <summary>Sends a request the broker does not answer (produce with acks=0).</summary>
    public Task SendWithoutResponseAsync(IApiMessage request, short version, CancellationToken cancellationToken) =>
        SendFrameAsync(request, version, expectResponse: false, cancellationToken);

    private async Task<byte[]> SendFrameAsync(IApiMessage request, short version, bool expectResponse, CancellationToken cancellationToken)
    {
        if (IsBroken && _brokerVersions.Count > 0)
        {
            throw new KafkaException(ErrorCode.NetworkException, $"The connection to {Host}:{Port} is closed.");
        }

        var correlationId = Interlocked.Increment(ref _nextCorrelationId);

        var completion = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (expectResponse)
        {
            _pending[correlationId] = completion;
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Encoded into the connection's own buffer, which stays as large as its largest request: a producer
            // sending megabyte requests would otherwise allocate (and page in) a new large array for each.
            _frame.ResetWrittenCount();
            MessageCodec.WriteRequestFrame(request, version, correlationId, _clientId, _frame);
            await _stream.WriteAsync(_frame.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            _pending.TryRemove(correlationId, out _);
            throw new KafkaException(ErrorCode.NetworkException, $"Lost the connection to {Host}:{Port}: {e.Message}", e);
        }
        catch
        {
            _pending.TryRemove(correlationId, out _);
            throw;
        }
        finally
        {
            _writeLock.Release();
        }

        if (!expectResponse)
        {
            return [];
        }

        using (cancellationToken.Register(() => completion.TrySetCanceled(cancellationToken)))
        {
            try
            {
                return await completion.Task.ConfigureAwait(false);
            }
            finally
            {
                _pending.TryRemove(correlationId, out _);
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        var sizeBuffer = new byte[4];
        Exception failure;
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(sizeBuffer, _closed.Token).ConfigureAwait(false);
                var size = BinaryPrimitives.ReadInt32BigEndian(sizeBuffer);
                if (size is < 4 or > MaxResponseBytes)
                {
                    throw new KafkaException(ErrorCode.CorruptMessage, $"{Host}:{Port} sent a response frame of {size} bytes.");
                }

                var frame = new byte[size];
                await _stream.ReadExactlyAsync(frame, _closed.Token).ConfigureAwait(false);
                var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame);
                if (_pending.TryRemove(correlationId, out var waiter))
                {
                    waiter.TrySetResult(frame);
                }
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or OperationCanceledException or KafkaException or ObjectDisposedException)
        {
            failure = e is KafkaException ? e : new KafkaException(ErrorCode.NetworkException, $"The connection to {Host}:{Port} closed.", e);
        }

        foreach (var waiter in _pending.Values)
        {
            waiter.TrySetException(failure);
        }

        _pending.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }

        await _closed.CancelAsync().ConfigureAwait(false);
        _tcp.Dispose();
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _closed.Dispose();
        _writeLock.Dispose();
    }
}
