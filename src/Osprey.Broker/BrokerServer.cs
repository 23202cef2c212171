using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Osprey.Broker.Handlers;
using Osprey.Broker.Network;

namespace Osprey.Broker;

/// <summary>A running broker: Kestrel listening with <see cref="KafkaConnectionHandler"/>, handlers, storage.</summary>
public sealed class BrokerServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ListenOptions _listen;

    private BrokerServer(WebApplication app, ListenOptions listen, BrokerIdentity identity, BrokerOptions options)
    {
        _app = app;
        _listen = listen;
        Identity = identity;
        Options = options;
    }

    public BrokerOptions Options { get; }

    public BrokerIdentity Identity { get; }

    /// <summary>The bound port (the real one when the options asked for port 0).</summary>
    public int Port => _listen.IPEndPoint!.Port;

    public static async Task<BrokerServer> StartAsync(BrokerOptions options, ILoggerProvider? logging = null, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logging is not null)
        {
            builder.Logging.AddProvider(logging);
        }

        var identity = new BrokerIdentity { NodeId = options.NodeId, ClusterId = options.ClusterId };
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(identity);
        builder.Services.AddSingleton<IRequestHandler>(sp => new ApiVersionsHandler(() => sp.GetRequiredService<RequestDispatcher>().Handlers));
        builder.Services.AddSingleton<IRequestHandler, MetadataHandler>();
        builder.Services.AddSingleton(sp => new RequestDispatcher(sp.GetServices<IRequestHandler>()));

        ListenOptions? listen = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(options.Listener, l =>
            {
                listen = l;
                l.UseConnectionHandler<KafkaConnectionHandler>();
            });
        });

        var app = builder.Build();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var server = new BrokerServer(app, listen!, identity, options);
        identity.Host = options.AdvertisedHost ?? (options.Listener.Address.Equals(System.Net.IPAddress.Any) ? "127.0.0.1" : options.Listener.Address.ToString());
        identity.Port = options.AdvertisedPort ?? server.Port;
        return server;
    }

    /// <summary>Stops accepting, lets in-flight requests finish, and closes.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
