using System.Net;
using DotNext.Buffers;
using DotNext.Net;
using DotNext.Net.Cluster.Consensus.Raft.Membership;

namespace Osprey.Quorum;

/// <summary>
/// The voters as DotNext's member list: static, from <c>controller.quorum.voters</c>, rebuilt at every start (Osprey
/// does not change voters at run time, so nothing about them needs to be stored).
/// </summary>
internal sealed class QuorumEndPoints : InMemoryClusterConfigurationStorage<EndPoint>
{
    public QuorumEndPoints(IEnumerable<EndPoint> voters)
    {
        var builder = CreateInitialConfigurationBuilder();
        foreach (var voter in voters)
        {
            builder.Add(voter);
        }

        builder.Build();
    }

    protected override void Encode(EndPoint address, ref BufferWriterSlim<byte> writer) => writer.WriteEndPoint(address);

    protected override EndPoint Decode(ref SequenceReader reader) => reader.ReadEndPoint();
}
