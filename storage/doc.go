// Package storage is Spool's durable partition log: Kafka record batches
// (magic v2) stored exactly as produced, in segment files with sparse offset
// and time indexes, crash recovery, retention, and group-commit fsync.
//
// # On-disk format
//
// Everything marked (format) below is read back after a restart and must not
// change without a migration.
//
//	<Dir>/
//	  .clean-shutdown                 (format) present only after a clean Close; removed by Open
//	  .lock                           (format) flock(2)ed by the Store that has Dir open; holds its pid
//	  <topic>-<partition>/            (format) one directory per log
//	    00000000000000000000.log        (format) segment; name = base offset, 20 zero-padded digits
//	    00000000000000000000.index      (format) sparse offset index of that segment
//	    00000000000000000000.timeindex  (format) time index of that segment
//	    00000000000000004711.log        ...the last segment is the active one
//	    log-start-offset                (format) decimal log start offset, written by DeleteRecords
//	    (other files)                   the caller's (the broker keeps topic-meta.json); left alone
//	  <topic>-<partition>.deleted/    a log being deleted; removed by Open
//	  commitlog/                      (format) the shared commit log (FsyncAlways)
//	    00000000000000000001.clog       (format) commit log file; name = sequence, 20 digits
//
// A .log file is a sequence of record batches, back to back, exactly as a Kafka
// client sent them except for the base offset, which the log assigns. Offsets
// are contiguous: each batch's BaseOffset is the previous batch's last offset + 1,
// and the first batch's BaseOffset is the segment's base offset.
//
//	+-------------------------------- record batch (magic 2) ---------------------------------+
//	| baseOffset int64 | length int32 | partitionLeaderEpoch int32 | magic int8 (=2)            |
//	| crc uint32 (CRC-32C of everything from attributes to the end of the batch)                |
//	| attributes int16 | lastOffsetDelta int32 | firstTimestamp int64 | maxTimestamp int64      |
//	| producerId int64 | producerEpoch int16 | baseSequence int32 | numRecords int32            |
//	| records ... (length - 49 bytes, compressed per attributes bits 0-2)                      |
//	+------------------------------------------------------------------------------------------+
//	  61-byte header; the batch is 12 + length bytes; all integers big-endian.
//
// The .index file holds 8-byte entries (relOffset uint32 | position uint32),
// one for a batch whenever at least IndexIntervalBytes were written since the
// previous entry: a lookup binary-searches the entries and scans at most about
// one interval of batch headers. relOffset = batch base offset - segment base.
//
// The .timeindex file holds 12-byte entries (timestamp int64 | relOffset
// uint32), strictly increasing in timestamp: "the largest timestamp so far is
// timestamp, first reached by the batch at relOffset". Its last entry gives
// the segment's max timestamp (retention.ms, MaxTimestamp).
//
// A .clog file is written full of zeros (Options.CommitLogFileBytes) and
// synced before it takes records, or is an earlier, checkpointed file
// renamed (<seq>.free while it waits, never replayed); it holds records back
// to back from its start, and the first record of length 0 (the zeros),
// torn, or failing its CRC (the records of the file's earlier use fail it)
// ends it:
//
//	+--------------------------------- commit log record ----------------------------------+
//	| length uint32 (bytes after the crc) | crc uint32 (CRC-32C of those bytes, XOR seq)    |
//	| segmentBase int64 | position uint32 | partition int32 | topicLen uint16 | topic bytes |
//	| batch ... (the record batch exactly as written to the segment, base offset assigned) |
//	+--------------------------------------------------------------------------------------+
//	  18 fixed bytes after the crc; all integers big-endian. The crc field is
//	  XORed with the low 32 bits of the file's sequence (its name); files
//	  written before 2026-12-03 hold the plain CRC-32C, which is also read.
//
// It says: this batch was written to <topic>-<partition>/<segmentBase>.log at
// position. Records of one partition are in offset order; files are in
// sequence order. A record is made durable by the fsync of the .clog file
// (one per round, for every partition's small appends) and acknowledged
// then; its segment is fsynced later, when the file is checkpointed (its
// segments fsynced, then the file renamed .free for reuse, or deleted) or the
// segment rolls or closes.
// Open replays every record still in commitlog/ into its segment before it
// opens any log (records of missing logs or segments are skipped), then, once
// every log is recovered and synced, deletes the files. DeleteLog
// checkpoints every file before it returns, so a record is never replayed
// into a later log of the same name.
//
// Index files are written whole, and synced, when a segment is closed (roll
// or clean shutdown). The active segment's indexes live in memory; after a
// crash they are rebuilt by scanning the segment.
//
// Constants that are part of the format: the batch layout constants in
// batch.go (batchHeaderSize and the field offsets, batchMagic, the attribute
// bits), offsetEntrySize and timeEntrySize in index.go, the file suffixes and
// segmentName (20 digits) in segment.go, cleanShutdownFile, logStartFile
// and deletedSuffix in store.go, and commitLogDir, commitLogSuffix,
// commitRecordHeader and commitRecordFixed in commitlog.go. Everything else (IndexIntervalBytes, segment
// sizes, buffer sizes) may change freely: readers never assume it.
//
// # Invariants
//
//   - A closed segment (every one but the last) was fsynced together with its
//     index files before the next segment's directory entry was made durable.
//     Recovery therefore only ever scans the active segment.
//   - In FsyncAlways mode the high watermark is the durable end: readers never
//     see a byte that a crash could take away, so an offset is never served and
//     then reassigned. A batch is durable once the fsync of its segment, or
//     of the commit log round holding its record, has covered it; a batch
//     goes to the commit log only when every batch before it in its log is
//     either already durable or in the commit log, so both paths keep the
//     durable part a prefix.
//   - Recovery reads only what is after the last clean point: the commit log
//     since its last checkpoint (bounded by two or three files) and each
//     log's active segment (bounded by segment.bytes).
//   - A batch's CRC is checked on append, on recovery and on every read; a
//     corrupt batch is never served.
//   - Segment positions fit in uint32: segments are limited to 2 GiB - 1.
//
// All I/O goes through FS (OSFS, or MemFS in tests). See docs/storage.md for
// the durability guarantees of each FsyncMode.
package storage
