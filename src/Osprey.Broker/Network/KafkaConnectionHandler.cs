using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Osprey.Protocol;

namespace Osprey.Broker.Network;

/// <summary>
/// One Kafka client connection on Kestrel. Requests are read as they arrive and handled concurrently (a producer's
/// in-flight requests wait for their fsync together), while responses are written strictly in request order. At
/// most <see cref="BrokerOptions.MaxInFlightRequestsPerConnection"/> requests are in progress; beyond that the
/// connection is not read (back-pressure). A malformed or oversized frame closes this connection only. When the
/// broker stops, connections stop reading, answer what they already read, and close, so that a stop never waits for
/// idle clients.
/// </summary>
public sealed partial class KafkaConnectionHandler(RequestDispatcher dispatcher, ServingGate gate, BrokerOptions options, RequestMemoryPool memory, ConnectionTracker connections, IHostApplicationLifetime lifetime, ILogger<KafkaConnectionHandler> logger)
    : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        connections.Opened();
        try
        {
            await ServeAsync(connection).ConfigureAwait(false);
        }
        finally
        {
            connections.Closed();
        }
    }

    private async Task ServeAsync(ConnectionContext connection)
    {
        if (!gate.WhenOpen.IsCompleted)
        {
            // A broker still starting (fenced): the first request waits until it may be served.
            try
            {
                using var waiting = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, lifetime.ApplicationStopping);
                await gate.WhenOpen.WaitAsync(waiting.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        using var closing = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(closing.Token, lifetime.ApplicationStopping);
        var inFlight = Channel.CreateBounded<InFlight>(new BoundedChannelOptions(options.MaxInFlightRequestsPerConnection)
        {
            SingleReader = true,
            SingleWriter = true,
        });
        var writer = WriteResponsesAsync(inFlight.Reader, output, closing);
        var idleTimeout = TimeSpan.FromMilliseconds(options.ConnectionsMaxIdleMs);
        var state = new ConnectionState(connection.RemoteEndPoint);

        // A request already started when the stop cancelled its queueing: it is awaited with the queued ones.
        InFlight? unqueued = null;
        try
        {
            while (!reading.IsCancellationRequested)
            {
                // connections.max.idle.ms: a read that waits longer than that closes the connection.
                using var idle = new CancellationTokenSource(idleTimeout, options.Time);
                using var readCancel = CancellationTokenSource.CreateLinkedTokenSource(reading.Token, idle.Token);
                ReadResult result;
                try
                {
                    result = await input.ReadAsync(readCancel.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (idle.IsCancellationRequested)
                {
                    LogIdle(logger, connection.ConnectionId);
                    break;
                }

                var buffer = result.Buffer;
                try
                {
                    while (FrameReader.TryReadFrame(ref buffer, options.SocketRequestMaxBytes, out var frame))
                    {
                        // queued.max.request.bytes: wait (not reading this connection) until the frame fits.
                        await memory.AcquireAsync((int)frame.Length, reading.Token).ConfigureAwait(false);
                        var started = Stopwatch.GetTimestamp();
                        var apiKey = frame.Length >= 2 ? ApiKeyOf(frame) : (short)-1;
                        unqueued = new InFlight(HandleAsync(frame, state, closing.Token), apiKey, started);
                        await inFlight.Writer.WriteAsync(unqueued.Value, reading.Token).ConfigureAwait(false);
                        unqueued = null;
                    }
                }
                finally
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    LogClosed(logger, connection.ConnectionId, "the client closed its side");
                    break;
                }
            }
        }
        catch (KafkaProtocolException e)
        {
            LogBadFrame(logger, connection.ConnectionId, e.Message);
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or IOException)
        {
            LogClosed(logger, connection.ConnectionId, e.GetType().Name + ": " + e.Message);
        }
        finally
        {
            inFlight.Writer.TryComplete();
            await writer.ConfigureAwait(false);

            // Requests whose answers will never be written still run to their end before the connection counts
            // as closed, so that a broker shutdown (which waits for connections) never closes logs under them.
            while (inFlight.Reader.TryRead(out var orphan))
            {
                await AwaitOrphanAsync(orphan.Response).ConfigureAwait(false);
            }

            if (unqueued is { } notQueued)
            {
                await AwaitOrphanAsync(notQueued.Response).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Lets a request whose answer will never be written finish, and releases its response.</summary>
    private async Task AwaitOrphanAsync(Task<PendingResponse?> response)
    {
        try
        {
            (await response.ConfigureAwait(false))?.Release();
        }
        catch (Exception e) when (e is OperationCanceledException or KafkaProtocolException)
        {
        }
        catch (Exception e)
        {
            LogHandlerFailed(logger, e);
        }
    }

    /// <summary>Copies the frame out of the pipe (it is released before the handler finishes) and dispatches it.</summary>
    private async Task<PendingResponse?> HandleAsync(ReadOnlySequence<byte> frame, ConnectionState connection, CancellationToken cancellationToken)
    {
        var length = (int)frame.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        frame.CopyTo(buffer);
        try
        {
            return await dispatcher.DispatchAsync(buffer.AsMemory(0, length), connection, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            memory.Release(length);
        }
    }

    /// <summary>
    /// Writes responses in request order; a request that failed closes the connection after those before it.
    /// Each response is encoded straight into the output pipe, and the pipe is flushed (one send) only when the
    /// next response is not ready yet, so answers that complete together (a group-commit round, say) leave in one
    /// write.
    /// </summary>
    private async Task WriteResponsesAsync(ChannelReader<InFlight> responses, PipeWriter output, CancellationTokenSource closing)
    {
        try
        {
            var open = true;
            while (open && await responses.WaitToReadAsync().ConfigureAwait(false))
            {
                while (open && responses.TryRead(out var pending))
                {
                    PendingResponse? response;
                    try
                    {
                        response = await pending.Response.ConfigureAwait(false);
                    }
                    catch (KafkaProtocolException e)
                    {
                        LogBadRequest(logger, e.ErrorCode, e.Message);
                        open = false;
                        break;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        LogHandlerFailed(logger, e);
                        open = false;
                        break;
                    }

                    if (response is not null)
                    {
                        try
                        {
                            response.WriteTo(output);
                        }
                        finally
                        {
                            response.Release();
                        }
                    }

                    BrokerMetrics.RequestCompleted(pending.ApiKey, pending.Started, Stopwatch.GetTimestamp());
                    if (responses.TryPeek(out var next) && next.Response.IsCompleted)
                    {
                        continue;
                    }

                    var flush = await output.FlushAsync(closing.Token).ConfigureAwait(false);
                    open = !flush.IsCompleted;
                }
            }

            // What was written before a failure still goes out.
            await output.FlushAsync(closing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or IOException)
        {
        }
        finally
        {
            // Whatever ends the writer ends the connection: stop reading and complete the transport.
            await closing.CancelAsync().ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static short ApiKeyOf(ReadOnlySequence<byte> frame)
    {
        Span<byte> key = stackalloc byte[2];
        frame.Slice(0, 2).CopyTo(key);
        return BinaryPrimitives.ReadInt16BigEndian(key);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} closed: {Reason}")]
    private static partial void LogClosed(ILogger logger, string connectionId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Closing idle connection {ConnectionId}")]
    private static partial void LogIdle(ILogger logger, string connectionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing connection {ConnectionId}: {Reason}")]
    private static partial void LogBadFrame(ILogger logger, string connectionId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing connection after a bad request ({ErrorCode}): {Reason}")]
    private static partial void LogBadRequest(ILogger logger, ErrorCode errorCode, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "A request handler failed; closing the connection")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception);

    /// <summary>A request being handled: its response to come, its API and when it arrived.</summary>
    private readonly record struct InFlight(Task<PendingResponse?> Response, short ApiKey, long Started);
}
