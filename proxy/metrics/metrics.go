// Package metrics exposes the statistics of proxy.Servers to Prometheus.
// It is what walnut serves on /metrics, usable by any program that embeds
// proxy.Servers: register a Collector with a prometheus.Registry.
//
// A Collector reads each pool's Stats, Ring and Latencies at scrape
// time and reports every counter of nutcracker's stats JSON (see
// proxy.DescribeStats) under the walnut_ prefix, plus walnut's own
// per-server ejection count, Init error count and liveness, latency
// histograms per pool and command, round-trip histograms per server, and
// the configuration reloads of the process. Pool metrics carry the label
// pool; server metrics the labels pool and server (the server's name as the
// stats JSON names it). The set of pools is read at every scrape, so pools
// added or removed by a reload appear or disappear.
//
// Pool metrics:
//
//	walnut_client_eof_total            counter  client_eof
//	walnut_client_err_total            counter  client_err
//	walnut_client_connections          gauge    client_connections
//	walnut_server_ejects_total         counter  server_ejects
//	walnut_forward_error_total         counter  forward_error
//	walnut_fragments_total             counter  fragments
//	walnut_pinned_connections          gauge    server connections held by one client (walnut's own)
//	walnut_pinned_refused_total        counter  commands refused by max_pinned_connections (walnut's own)
//	walnut_request_duration_seconds    histogram  time from reading a request to its reply being
//	                                              ready, per command (label command, such as "get")
//
// Server metrics:
//
//	walnut_server_eof_total            counter  server_eof
//	walnut_server_err_total            counter  server_err
//	walnut_server_timedout_total       counter  server_timedout
//	walnut_server_connections          gauge    server_connections
//	walnut_server_ejected_at_seconds   gauge    server_ejected_at, in seconds since the epoch (0: never)
//	walnut_server_requests_total       counter  requests
//	walnut_server_request_bytes_total  counter  request_bytes
//	walnut_server_responses_total      counter  responses
//	walnut_server_response_bytes_total counter  response_bytes
//	walnut_server_in_queue             gauge    in_queue
//	walnut_server_in_queue_bytes       gauge    in_queue_bytes
//	walnut_server_out_queue            gauge    out_queue
//	walnut_server_out_queue_bytes      gauge    out_queue_bytes
//	walnut_server_ejections_total      counter  times this server was ejected (walnut's own)
//	walnut_server_init_errors_total    counter  error replies to SELECT/AUTH on connect (walnut's own)
//	walnut_server_live                 gauge    1 if the server receives keys now, 0 if ejected
//	walnut_server_rtt_seconds          histogram  time from reading a request to the server's reply
//
// Process metrics, without labels, when Source.Reloads is set:
//
//	walnut_config_reloads_total                          counter  reloads attempted, failed ones included
//	walnut_config_reload_failures_total                  counter  reloads that were rejected and changed nothing
//	walnut_config_last_reload_successful                 gauge    1 if the last reload succeeded (or none was tried), else 0
//	walnut_config_last_reload_success_timestamp_seconds  gauge    time of the last successful load, in seconds since the epoch
//
// The histograms have proxy's fixed buckets, from 50µs to 10s.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walnutproxy/walnut/proxy"
)

var (
	poolLabels    = []string{"pool"}
	serverLabels  = []string{"pool", "server"}
	commandLabels = []string{"pool", "command"}
)

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("walnut_"+name, help, poolLabels, nil)
}

func serverDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("walnut_"+name, help, serverLabels, nil)
}

func processDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("walnut_"+name, help, nil, nil)
}

var (
	clientEOF         = poolDesc("client_eof_total", "Client connections closed by the client (eof).")
	clientErr         = poolDesc("client_err_total", "Client connections closed on an error.")
	clientConnections = poolDesc("client_connections", "Open client connections.")
	serverEjects      = poolDesc("server_ejects_total", "Times a backend server of the pool was ejected.")
	forwardError      = poolDesc("forward_error_total", "Error replies made up by the proxy because a backend failed.")
	fragments         = poolDesc("fragments_total", "Sub-requests created by splitting multi-key requests.")
	pinnedConns       = poolDesc("pinned_connections", "Server connections held by one client: transactions, blocking commands, subscriptions.")
	pinnedRefused     = poolDesc("pinned_refused_total", "Commands refused because the pool had max_pinned_connections pinned connections.")
	requestDuration   = prometheus.NewDesc("walnut_request_duration_seconds",
		"Time from reading a request to its reply being ready to write, per command.", commandLabels, nil)

	serverEOF           = serverDesc("server_eof_total", "Server connections closed by the server (eof).")
	serverErr           = serverDesc("server_err_total", "Server connections closed on an error.")
	serverTimedOut      = serverDesc("server_timedout_total", "Server connections closed by a timeout.")
	serverConnections   = serverDesc("server_connections", "Open server connections.")
	serverEjectedAt     = serverDesc("server_ejected_at_seconds", "Time of the server's last ejection in seconds since the Unix epoch; 0 if never ejected.")
	serverRequests      = serverDesc("server_requests_total", "Requests queued to the server.")
	serverRequestBytes  = serverDesc("server_request_bytes_total", "Bytes of the requests queued to the server.")
	serverResponses     = serverDesc("server_responses_total", "Replies received from the server.")
	serverResponseBytes = serverDesc("server_response_bytes_total", "Bytes of the replies received from the server.")
	serverInQueue       = serverDesc("server_in_queue", "Requests queued, not yet written to the server.")
	serverInQueueBytes  = serverDesc("server_in_queue_bytes", "Bytes of the requests queued, not yet written.")
	serverOutQueue      = serverDesc("server_out_queue", "Requests written to the server, awaiting their reply.")
	serverOutQueueBytes = serverDesc("server_out_queue_bytes", "Bytes of the requests awaiting their reply.")
	serverServerEjects  = serverDesc("server_ejections_total", "Times this server was ejected.")
	serverInitErrors    = serverDesc("server_init_errors_total", "Error replies to the commands sent on connecting (SELECT, AUTH).")
	serverLive          = serverDesc("server_live", "1 if the server receives keys now, 0 if it is ejected.")
	serverRTT           = serverDesc("server_rtt_seconds", "Time from reading a request to the server's reply to it.")

	configReloads     = processDesc("config_reloads_total", "Configuration reloads attempted, failed ones included.")
	configFailures    = processDesc("config_reload_failures_total", "Configuration reloads rejected; they changed nothing.")
	configLastOK      = processDesc("config_last_reload_successful", "1 if the last configuration reload succeeded or none was tried, else 0.")
	configLastSuccess = processDesc("config_last_reload_success_timestamp_seconds", "Time of the last successful configuration load (the start, or a reload) in seconds since the Unix epoch.")

	poolDescs = []*prometheus.Desc{
		clientEOF, clientErr, clientConnections, serverEjects, forwardError, fragments, pinnedConns, pinnedRefused, requestDuration,
		serverEOF, serverErr, serverTimedOut, serverConnections, serverEjectedAt,
		serverRequests, serverRequestBytes, serverResponses, serverResponseBytes,
		serverInQueue, serverInQueueBytes, serverOutQueue, serverOutQueueBytes,
		serverServerEjects, serverInitErrors, serverLive, serverRTT,
	}
	reloadDescs = []*prometheus.Desc{configReloads, configFailures, configLastOK, configLastSuccess}
)

// ReloadStats count the configuration reloads of a process.
type ReloadStats struct {
	// Successes and Failures count the reloads that were applied and
	// those that were rejected.
	Successes, Failures uint64
	// LastSuccess is the time of the last successful load: the start of
	// the process until a reload succeeds. Zero is reported as 0.
	LastSuccess time.Time
	// LastOK is false if the last reload failed; true if it succeeded or
	// if none was tried.
	LastOK bool
}

// Source is what a Collector reports.
type Source struct {
	// Pools returns the pools to report. It is called at every scrape, so
	// the set may change, as after a reload. Pool names must be distinct,
	// as they are in a nutcracker.yml. Required.
	Pools func() []*proxy.Server
	// Reloads, if not nil, returns the reload statistics reported as the
	// walnut_config_ metrics; if nil those metrics are left out.
	Reloads func() ReloadStats
	// Lock, if not nil, is held while the pools are read, so that a scrape
	// sees the set of pools and their configurations of one reload (each
	// pool's Stats is consistent by itself). package proxy/fleet passes
	// the read side of the lock its reloads take.
	Lock sync.Locker
}

// A Collector is a prometheus.Collector reporting the statistics of a set of
// pools, read when scraped. It is safe for concurrent use.
type Collector struct {
	src Source
}

// NewCollector returns a Collector for src.
func NewCollector(src Source) *Collector {
	return &Collector{src: src}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range poolDescs {
		ch <- d
	}
	if c.src.Reloads != nil {
		for _, d := range reloadDescs {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Reloads != nil {
		r := c.src.Reloads()
		ch <- prometheus.MustNewConstMetric(configReloads, prometheus.CounterValue, float64(r.Successes+r.Failures))
		ch <- prometheus.MustNewConstMetric(configFailures, prometheus.CounterValue, float64(r.Failures))
		ch <- prometheus.MustNewConstMetric(configLastOK, prometheus.GaugeValue, boolFloat(r.LastOK))
		var at float64
		if !r.LastSuccess.IsZero() {
			at = float64(r.LastSuccess.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(configLastSuccess, prometheus.GaugeValue, at)
	}
	if c.src.Lock != nil {
		c.src.Lock.Lock()
		defer c.src.Lock.Unlock()
	}
	for _, s := range c.src.Pools() {
		collectPool(ch, s)
	}
}

// collectPool sends the metrics of pool s.
func collectPool(ch chan<- prometheus.Metric, s *proxy.Server) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	pool := s.Name()
	st := s.Stats()
	counter(clientEOF, st.ClientEOF, pool)
	counter(clientErr, st.ClientErr, pool)
	gauge(clientConnections, float64(st.ClientConnections), pool)
	counter(serverEjects, st.ServerEjects, pool)
	counter(forwardError, st.ForwardError, pool)
	counter(fragments, st.Fragments, pool)
	gauge(pinnedConns, float64(st.PinnedConnections), pool)
	counter(pinnedRefused, st.PinnedRefused, pool)
	for _, cl := range s.Latencies() {
		ch <- histogram(requestDuration, cl.Histogram, pool, cl.Command)
	}
	for _, ss := range st.Servers {
		l := []string{pool, ss.Name}
		counter(serverEOF, ss.ServerEOF, l...)
		counter(serverErr, ss.ServerErr, l...)
		counter(serverTimedOut, ss.ServerTimedOut, l...)
		gauge(serverConnections, float64(ss.ServerConnections), l...)
		gauge(serverEjectedAt, float64(ss.ServerEjectedAt)/1e6, l...)
		counter(serverRequests, ss.Requests, l...)
		counter(serverRequestBytes, ss.RequestBytes, l...)
		counter(serverResponses, ss.Responses, l...)
		counter(serverResponseBytes, ss.ResponseBytes, l...)
		gauge(serverInQueue, float64(ss.InQueue), l...)
		gauge(serverInQueueBytes, float64(ss.InQueueBytes), l...)
		gauge(serverOutQueue, float64(ss.OutQueue), l...)
		gauge(serverOutQueueBytes, float64(ss.OutQueueBytes), l...)
		counter(serverServerEjects, ss.Ejects, l...)
		counter(serverInitErrors, ss.InitErrors, l...)
		gauge(serverLive, boolFloat(ss.Live), l...)
		ch <- histogram(serverRTT, ss.RTT, l...)
	}
}

// histogram converts h, whose counts are per bucket, to a Prometheus
// histogram, whose bucket counts are cumulative. The +Inf bucket is
// h.Count.
func histogram(d *prometheus.Desc, h proxy.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Unready returns the names of the pools none of whose servers is live
// (every one ejected), in order; it is empty when every pool can route
// requests.
func Unready(pools []*proxy.Server) []string {
	var out []string
	for _, s := range pools {
		ok := false
		for i := range s.Ring().Len() {
			if s.Live(i) {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, s.Name())
		}
	}
	return out
}
