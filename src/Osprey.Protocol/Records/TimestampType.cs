namespace Osprey.Protocol.Records;

/// <summary>Bit 3 of a record batch's attributes: who set the timestamps.</summary>
public enum TimestampType : byte
{
    /// <summary>The producer's timestamps, per record.</summary>
    CreateTime = 0,

    /// <summary>The broker's append time; it is the batch's maxTimestamp and applies to every record.</summary>
    LogAppendTime = 1,
}
