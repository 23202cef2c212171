using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Osprey.Quorum;

/// <summary>
/// Raft's transport on the node's CONTROLLER listener, which it shares with the Kafka-protocol controller APIs. Every
/// Raft connection opens with the 8-byte preamble <c>OSPRAFT1</c>: read as a Kafka frame size it is about 1.3 GB, far
/// above any <c>socket.request.max.bytes</c> a Kafka client could use, so the two cannot be confused. The listener's
/// connection handler offers each connection to <see cref="TryServeAsync"/>: a Raft connection is handed to DotNext and
/// served until DotNext lets it go; anything else is left untouched for the Kafka dispatcher.
/// </summary>
public sealed class ControllerPortTransport : IConnectionListenerFactory, IConnectionFactory
{
    private static readonly byte[] PreambleBytes = "OSPRAFT1"u8.ToArray();
    private readonly SocketConnectionContextFactory _sockets;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<EndPoint, bool> _cut = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ConnectionContext, EndPoint> _outbound = new();
    private volatile Listener? _listener;

    public ControllerPortTransport(ILoggerFactory? loggers = null)
    {
        var logger = (loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger<ControllerPortTransport>();
        _sockets = new SocketConnectionContextFactory(new SocketConnectionFactoryOptions(), logger);
    }

    public static ReadOnlySpan<byte> Preamble => PreambleBytes;

    /// <summary>
    /// Looks at the first bytes of a connection to the CONTROLLER listener. A Raft connection is served here and true
    /// returned once it has ended; otherwise false, with nothing consumed, and the caller serves Kafka frames.
    /// </summary>
    public async Task<bool> TryServeAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return true; // closed before saying anything: nothing to serve
            }

            var buffer = result.Buffer;
            if (buffer.Length >= PreambleBytes.Length || result.IsCompleted)
            {
                var isRaft = buffer.Length >= PreambleBytes.Length && IsPreamble(buffer.Slice(0, PreambleBytes.Length));
                if (!isRaft)
                {
                    input.AdvanceTo(buffer.Start);
                    return false;
                }

                input.AdvanceTo(buffer.GetPosition(PreambleBytes.Length));
                break;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }

        if (_listener is not { } listener)
        {
            return true; // no quorum runs here: the connection is closed
        }

        var handed = new HandedConnection(connection);
        if (!listener.Offer(handed))
        {
            return true;
        }

        // The quorum stopping lets its connections go: none may keep the listener's host waiting.
        using var unbound = listener.Stopping.Register(handed.Release);

        try
        {
            await handed.Released.WaitAsync(connection.ConnectionClosed).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The peer went away; Kestrel tidies the connection up.
        }

        return true;
    }

    private static bool IsPreamble(ReadOnlySequence<byte> bytes)
    {
        Span<byte> first = stackalloc byte[8];
        bytes.CopyTo(first);
        return first.SequenceEqual(PreambleBytes);
    }

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = new Listener(this, endpoint);
        _listener = listener;
        return ValueTask.FromResult<IConnectionListener>(listener);
    }

    /// <summary>
    /// Cuts this node's Raft traffic to <paramref name="peer"/>: open connections to it are aborted and new ones are
    /// refused until <see cref="Heal"/>. The fault seam partition tests use; cutting both directions of a pair (each
    /// node cutting the other) separates them.
    /// </summary>
    public void Cut(EndPoint peer)
    {
        _cut[peer] = true;
        foreach (var (connection, endpoint) in _outbound)
        {
            if (endpoint.Equals(peer))
            {
                connection.Abort(new ConnectionAbortedException($"Raft traffic to {peer} is cut."));
            }
        }
    }

    /// <summary>Lets this node's Raft traffic reach <paramref name="peer"/> again.</summary>
    public void Heal(EndPoint peer) => _cut.TryRemove(peer, out _);

    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (_cut.ContainsKey(endpoint))
        {
            throw new SocketException((int)SocketError.ConnectionRefused);
        }

        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var connection = _sockets.Create(socket);
        _outbound[connection] = endpoint;
        connection.ConnectionClosed.Register(() => _outbound.TryRemove(connection, out _));
        await connection.Transport.Output.WriteAsync(PreambleBytes, cancellationToken).ConfigureAwait(false);
        return connection;
    }

    private sealed class Listener(ControllerPortTransport owner, EndPoint endpoint) : IConnectionListener
    {
        private readonly Channel<ConnectionContext> _accepted = Channel.CreateUnbounded<ConnectionContext>();
        private readonly CancellationTokenSource _stopping = new();

        public CancellationToken Stopping => _stopping.Token;

        public EndPoint EndPoint => endpoint;

        public bool Offer(ConnectionContext connection) => _accepted.Writer.TryWrite(connection);

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.CompareExchange(ref owner._listener, null, this);
            _accepted.Writer.TryComplete();
            while (_accepted.Reader.TryRead(out var unaccepted))
            {
                ((HandedConnection)unaccepted).Release();
            }

            _stopping.Cancel();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => UnbindAsync();
    }

    /// <summary>
    /// A CONTROLLER-listener connection lent to DotNext: when DotNext disposes it, the listener's handler returns and
    /// Kestrel closes the socket as it does for every connection.
    /// </summary>
    private sealed class HandedConnection(ConnectionContext inner) : ConnectionContext
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Released => _released.Task;

        public void Release()
        {
            inner.Abort(new ConnectionAbortedException("The metadata quorum on this node stopped."));
            _released.TrySetResult();
        }

        public override string ConnectionId { get => inner.ConnectionId; set => inner.ConnectionId = value; }

        public override IFeatureCollection Features => inner.Features;

        public override IDictionary<object, object?> Items { get => inner.Items; set => inner.Items = value; }

        public override IDuplexPipe Transport { get => inner.Transport; set => inner.Transport = value; }

        public override EndPoint? LocalEndPoint { get => inner.LocalEndPoint; set => inner.LocalEndPoint = value; }

        public override EndPoint? RemoteEndPoint { get => inner.RemoteEndPoint; set => inner.RemoteEndPoint = value; }

        public override CancellationToken ConnectionClosed { get => inner.ConnectionClosed; set => inner.ConnectionClosed = value; }

        public override void Abort(ConnectionAbortedException abortReason)
        {
            inner.Abort(abortReason);
            _released.TrySetResult();
        }

        public override ValueTask DisposeAsync()
        {
            _released.TrySetResult();
            return ValueTask.CompletedTask;
        }
    }
}
