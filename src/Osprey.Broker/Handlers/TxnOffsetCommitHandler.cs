// TxnOffsetCommit (key 28), versions 0-6.
//   Offsets committed inside a transaction (consume-transform-produce): written to __consumer_offsets as part of
//   the producer's transaction and applied only when it commits. v3+ carries the member and generation (or member
//   epoch), checked as for OffsetCommit. v6 names topics by id (UNKNOWN_TOPIC_ID for an id no topic has). Per
//   partition: UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE; PRODUCER_FENCED for an old epoch.
//   The group's __consumer_offsets partition must be in the producer's open transaction (added by AddOffsetsToTxn;
//   INVALID_TXN_STATE otherwise, unless transaction.partition.verification.enable is off). v5+ is transaction
//   version 2: the commit adds that partition itself.
using Osprey.Broker.Groups;
using Osprey.Broker.Transactions;
using Osprey.Metadata;
using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Broker.Handlers;

public sealed class TxnOffsetCommitHandler(GroupCoordinator groups, TransactionCoordinator transactions, IMetadataQuorum metadata) : RequestHandler<TxnOffsetCommitRequest, TxnOffsetCommitResponse>
{
    public override ApiKey ApiKey => ApiKey.TxnOffsetCommit;

    public override short MinVersion => 0;

    public override short MaxVersion => 6;

    protected override async ValueTask<TxnOffsetCommitResponse> HandleAsync(RequestContext context, TxnOffsetCommitRequest request, CancellationToken cancellationToken)
    {
        var image = metadata.Image;
        if (context.ApiVersion >= 6)
        {
            foreach (var topic in request.Topics)
            {
                topic.Name = image.Topic(topic.TopicId)?.Name ?? "";
            }
        }

        if (context.ApiVersion >= 5 || transactions.Options.VerifyPartitions)
        {
            var mode = context.ApiVersion >= 5 ? TxnAddMode.Implicit : TxnAddMode.VerifyOnly;
            var added = await transactions.AddOffsetsAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GroupId, mode, cancellationToken).ConfigureAwait(false);
            if (added != ErrorCode.None)
            {
                var refused = AddPartitionsToTxnHandler.Compatible(added, context.ApiVersion);
                return GroupCoordinator.TxnCommitResponse(request, [.. request.Topics.SelectMany(t => t.Partitions).Select(_ => refused)]);
            }
        }

        var response = await groups.TxnCommitOffsetsAsync(request, (topic, partition) => image.Topic(topic)?.Partitions.ContainsKey(partition) == true, cancellationToken).ConfigureAwait(false);
        foreach (var topic in response.Topics)
        {
            foreach (var partition in topic.Partitions)
            {
                partition.ErrorCode = context.ApiVersion >= 6 && topic.Name.Length == 0 ? (short)ErrorCode.UnknownTopicId
                    : partition.ErrorCode == (short)ErrorCode.ProducerFenced && context.ApiVersion < 2 ? (short)ErrorCode.InvalidProducerEpoch
                    : partition.ErrorCode;
            }
        }

        return response;
    }
}
