package broker

// configDocs is what DescribeConfigs v3+ returns as a config's
// documentation when the request asks for it (IncludeDocumentation), keyed
// by topic config name; a broker-wide synonym shares its topic config's
// text. It says what the config does in Spool.
var configDocs = map[string]string{
	cfgCleanupPolicy:        "What happens to old segments: delete (by retention.ms and retention.bytes). compact is not supported yet.",
	cfgCompressionType:      "The codec batches are stored in: producer keeps what the producer sent; uncompressed, gzip, snappy, lz4 or zstd recompresses batches in another codec on append.",
	cfgDeleteRetentionMs:    "How long a compacted topic keeps delete tombstones; no effect on a delete-policy topic.",
	cfgFlushMessages:        "With --fsync interval or never: the append that brings the unsynced records to this many waits for an fsync. --fsync always fsyncs every acknowledged batch anyway.",
	cfgFlushMs:              "With --fsync interval or never: a write is fsynced at most this many milliseconds after it was made (0: every append waits for its fsync).",
	cfgIndexIntervalBytes:   "Bytes of batches between two entries of the sparse offset index (0: an entry per batch).",
	cfgMaxMessageBytes:      "The largest record batch a produce may append, after recompression; larger ones get MESSAGE_TOO_LARGE.",
	cfgMessageFormatVersion: "Accepted and ignored, as by Kafka 3.x: batches are always stored in format v2.",
	cfgTimestampAfterMax:    "How far into the future of the broker's clock a CreateTime timestamp may be; later batches are refused.",
	cfgTimestampBeforeMax:   "How far into the past of the broker's clock a CreateTime timestamp may be; older batches are refused.",
	cfgMessageTimestampType: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock.",
	cfgMinInsyncReplicas:    "Above 1, an acks=all produce gets NOT_ENOUGH_REPLICAS: Spool is one node, one replica.",
	cfgRetentionBytes:       "A partition's closed segments are deleted, oldest first, while it is larger than this (-1: no limit; 0: every closed segment).",
	cfgRetentionMs:          "Closed segments whose newest record is older than this are deleted (-1: keep forever; 0: every closed segment).",
	cfgSegmentBytes:         "The active segment rolls when a batch would take it past this size (at least 1024).",
	cfgSegmentMs:            "The active segment rolls when its first record is older than this.",
}
