namespace Osprey.Protocol.Records;

/// <summary>A record header to write. Keys are UTF-8 text and never null; a null value is written as length -1.</summary>
public readonly record struct Header(string Key, byte[]? Value);
