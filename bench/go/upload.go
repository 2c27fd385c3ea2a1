// A peer for the benchmark: Alibaba's own Go SDK (v1) uploading one file with UploadFile, CRC-64 checks on
// (the SDK's default), to the benchmark sink. Prints one JSON line in the format of bench/client.ts.
//
// Built by bench/index.ts when `go` and Debian's golang-github-aliyun-aliyun-oss-go-sdk-dev are installed:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o OUT bench/go/upload.go
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"
)

func main() {
	url := flag.String("url", "", "sink URL")
	file := flag.String("file", "", "file to upload")
	partSize := flag.Int64("part-size", 8<<20, "bytes per part")
	threads := flag.Int("threads", 4, "parts in flight")
	flag.Parse()

	info, err := os.Stat(*file)
	if err != nil {
		panic(err)
	}
	started := time.Now()
	client, err := oss.New(*url, "test-ak", "test-sk")
	if err != nil {
		panic(err)
	}
	bucket, err := client.Bucket("bench")
	if err != nil {
		panic(err)
	}
	if err := bucket.UploadFile("go-sdk", *file, *partSize, oss.Routines(*threads)); err != nil {
		panic(err)
	}
	seconds := time.Since(started).Seconds()
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		panic(err)
	}
	cpu := float64(usage.Utime.Sec+usage.Stime.Sec) + float64(usage.Utime.Usec+usage.Stime.Usec)/1e6
	bytes := info.Size()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"client":     "go-sdk",
		"bytes":      bytes,
		"seconds":    seconds,
		"mibPerSec":  float64(bytes) / 1024 / 1024 / seconds,
		"cpuSeconds": cpu,
		"rssMb":      peakRssMb(),
	})
}

// peakRssMb reads VmHWM: getrusage's maxrss carries the parent's peak across fork and exec.
func peakRssMb() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 2 && fields[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(fields[1], 64)
			return kb / 1024
		}
	}
	return 0
}
