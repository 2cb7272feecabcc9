package storage_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log"

	"github.com/spoolmq/spool/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchOf builds a magic v2 record batch, as a Kafka producer sends it.
func batchOf(values ...string) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // everything after the (1-byte, zero) length
		records = r.AppendTo(records)
	}
	b := (&kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(len(values) - 1), NumRecords: int32(len(values)),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: records,
	}).AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))                                          // length
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))) // CRC-32C
	return b
}

func Example() {
	s, err := storage.Open(storage.Options{Dir: "/data", FS: storage.NewMemFS()})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	l, err := s.CreateLog(storage.TopicPartition{Topic: "orders", Partition: 0}, storage.LogConfig{})
	if err != nil {
		log.Fatal(err)
	}
	batch := batchOf("created", "paid")
	res, err := l.Append(context.Background(), batch, storage.AppendOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended offsets", res.BaseOffset, "to", res.LastOffset)
	read, err := l.Read(1, 1<<20) // the whole batch containing offset 1
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("high watermark", read.HighWatermark, "same bytes:", string(read.Records) == string(batch))
	// Output:
	// appended offsets 0 to 1
	// high watermark 2 same bytes: true
}
