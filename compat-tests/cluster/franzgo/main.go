// franzgo: a tiny franz-go (github.com/twmb/franz-go/pkg/kgo) client for the cluster tests.
//
//	franzgo produce -brokers B -topic T -partitions 0,1,2 -count N -prefix P
//	    N records per partition (key "P-<p>-<i>", value "P-<p>-<i>-value"), one ProduceSync, acks=all,
//	    idempotent (franz-go defaults); prints one JSON line per acked record:
//	    {"partition":p,"offset":o,"key":"...","value":"..."}
//	franzgo consume -brokers B -topic T -partitions 0,1,2 -count N [-timeout 30s]
//	    reads the partitions from the start (direct assignment, no group) until N records in total;
//	    prints one JSON line per record in the order received.
//
// Exit status 1 on any error (message on stderr), 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type rec struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "franzgo: "+format+"\n", args...)
	os.Exit(1)
}

func parsePartitions(s string) []int32 {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			die("bad partition %q", f)
		}
		out = append(out, int32(p))
	}
	return out
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: franzgo produce|consume [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	brokers := fs.String("brokers", "", "comma-separated seed brokers")
	topic := fs.String("topic", "", "topic")
	partitions := fs.String("partitions", "0", "comma-separated partitions")
	count := fs.Int("count", 10, "produce: records per partition; consume: total records")
	prefix := fs.String("prefix", "franzgo", "produce: key/value prefix")
	timeout := fs.Duration("timeout", 30*time.Second, "overall deadline")
	_ = fs.Parse(os.Args[2:])
	if *brokers == "" || *topic == "" {
		die("-brokers and -topic are required")
	}
	parts := parsePartitions(*partitions)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	enc := json.NewEncoder(os.Stdout)

	switch cmd {
	case "produce":
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(strings.Split(*brokers, ",")...),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.DefaultProduceTopic(*topic),
		)
		if err != nil {
			die("client: %v", err)
		}
		defer cl.Close()
		var rs []*kgo.Record
		for _, p := range parts {
			for i := 0; i < *count; i++ {
				k := fmt.Sprintf("%s-%d-%d", *prefix, p, i)
				rs = append(rs, &kgo.Record{Partition: p, Key: []byte(k), Value: []byte(k + "-value")})
			}
		}
		results := cl.ProduceSync(ctx, rs...)
		if err := results.FirstErr(); err != nil {
			die("produce: %v", err)
		}
		for _, r := range results {
			_ = enc.Encode(rec{r.Record.Partition, r.Record.Offset, string(r.Record.Key), string(r.Record.Value)})
		}
	case "consume":
		offsets := map[int32]kgo.Offset{}
		for _, p := range parts {
			offsets[p] = kgo.NewOffset().AtStart()
		}
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(strings.Split(*brokers, ",")...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: offsets}),
		)
		if err != nil {
			die("client: %v", err)
		}
		defer cl.Close()
		got := 0
		for got < *count {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				die("timeout: %d/%d records read", got, *count)
			}
			var ferr error
			fetches.EachError(func(t string, p int32, err error) {
				ferr = fmt.Errorf("%s[%d]: %w", t, p, err)
			})
			if ferr != nil {
				die("fetch: %v", ferr)
			}
			fetches.EachRecord(func(r *kgo.Record) {
				got++
				_ = enc.Encode(rec{r.Partition, r.Offset, string(r.Key), string(r.Value)})
			})
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", cmd)
		os.Exit(2)
	}
}
