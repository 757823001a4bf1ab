package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/observe/alarm"
	"github.com/apgstack/apgstack/internal/twin/observe/metrics"
	"github.com/apgstack/apgstack/internal/twin/observe/notify"
	"github.com/jackc/pgx/v5"
)

// MonitoringOptions tune the sampler, the alarms and notifications (tests; the defaults follow
// the best-practice data).
type MonitoringOptions struct {
	// SampleInterval overrides bestpractice.SampleMetricsSeconds(stage).
	SampleInterval time.Duration
	// AlarmPeriod overrides every alarm's period; AlarmThresholds the thresholds, by alarm name
	// (CPU, MaxUsedTxIDs, FreeLocalStorage).
	AlarmPeriod     time.Duration
	AlarmThresholds map[string]float64
	// MetricsPort is the Prometheus endpoint's loopback port; 0 picks a free one.
	MetricsPort int
	// NotifyBackoff is the first wait between notification attempts (default 1 s).
	NotifyBackoff time.Duration
}

// monitoring is the sampler, the alarm evaluator, the notifier and the Prometheus endpoint.
type monitoring struct {
	sampler     *metrics.Sampler
	alarms      *alarm.Evaluator
	mailer      *notify.Mailer
	metricsAddr atomic.Pointer[string] // the Prometheus endpoint's, once served
	interval    time.Duration
}

// prepareNotifications sets up e-mail to the NotificationList when an SMTP relay is configured;
// events queue from the start and are sent once monitoring runs.
func (s *Supervisor) prepareNotifications() error {
	if s.cfg().Target.Local.SMTP == "" || s.cfg().Environment.NotificationList == "" {
		return nil
	}
	m, err := notify.New(notify.Options{Addr: s.cfg().Target.Local.SMTP, From: s.cfg().Target.Local.SMTPFrom, To: s.cfg().Environment.NotificationList,
		Backoff: s.opts.Monitoring.NotifyBackoff, Log: s.log})
	if err != nil {
		return err
	}
	s.ops.mailer = m
	return nil
}

// notifyEvent mails an event to the NotificationList, as the event subscriptions publish to
// the notification topic. It never blocks.
func (o *operations) notifyEvent(cluster string, ev api.Event) {
	if o == nil || o.mailer == nil {
		return
	}
	subject := fmt.Sprintf("[apgstack] %s: %s %s %s", cluster, ev.SourceType, ev.SourceID, ev.Category)
	body := fmt.Sprintf("Time: %s\nSource type: %s\nSource: %s\nCategory: %s\n\n%s\n", ev.Time.UTC().Format(time.RFC3339),
		ev.SourceType, ev.SourceID, ev.Category, ev.Message)
	o.mailer.Send(notify.Message{Subject: subject, Body: body, Time: ev.Time})
}

// targets are the running instances, with their cluster role.
func (s *Supervisor) targets() []metrics.Target {
	t := s.topo.now()
	var out []metrics.Target
	for _, in := range t.state.Instances {
		i := t.instances[in.Name]
		if i == nil || !i.Running() {
			continue
		}
		role := "READER"
		if in.Role == api.RoleWriter {
			role = "WRITER"
		}
		out = append(out, metrics.Target{Instance: in.Name, Role: role, DataDir: i.DataDir(), PID: i.PID(),
			Connect: func(ctx context.Context) (*pgx.Conn, error) { return i.Connect(ctx, "postgres") }})
	}
	return out
}

// startMonitoring runs the sampler and the alarms, the notifier and the Prometheus endpoint.
func (s *Supervisor) startMonitoring(ctx context.Context) func() {
	o := s.opts.Monitoring
	m := &s.ops.monitoring
	m.interval = time.Duration(bestpractice.SampleMetricsSeconds(s.cfg().Environment.Stage)) * time.Second
	if o.SampleInterval > 0 {
		m.interval = o.SampleInterval
	}
	var evalOpts []alarm.Option
	if o.AlarmPeriod > 0 {
		evalOpts = append(evalOpts, alarm.WithPeriod(o.AlarmPeriod))
	}
	// Thresholds from the configuration (a drill), then from the options (tests).
	for _, th := range []map[string]float64{s.cfg().Target.Local.AlarmThresholds, o.AlarmThresholds} {
		for name, v := range th {
			evalOpts = append(evalOpts, alarm.WithThreshold(name, v))
		}
	}
	ev, err := alarm.New(s.cfg().Database.StackName, bestpractice.Alarms, time.Now(), evalOpts...)
	if err != nil {
		s.log.Warn("alarms not evaluated", "err", err)
	}
	m.alarms = ev
	m.sampler = metrics.NewSampler(m.interval, s.targets)
	m.sampler.OnSample = func(smp metrics.Sample) {
		if m.alarms == nil {
			return
		}
		for name, v := range smp.Values {
			m.alarms.Observe(alarm.Sample{Time: smp.Time, Metric: name, Role: smp.Role, Value: v})
		}
	}

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	if m.mailer != nil {
		wg.Add(1)
		go func() { defer wg.Done(); m.mailer.Run(ctx) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(m.interval)
		defer tick.Stop()
		defer m.sampler.Close()
		for {
			m.sampler.SampleAll(ctx)
			if m.alarms != nil {
				for _, tr := range m.alarms.Evaluate(time.Now()) {
					s.event(tr.Event())
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	port := o.MetricsPort
	if port == 0 {
		port = s.cfg().Target.Local.MetricsPort
	}
	ln, err := metrics.ListenLoopback(port)
	var srv *http.Server
	if err != nil {
		s.log.Warn("Prometheus endpoint not served", "err", err)
	} else {
		addr := ln.Addr().String()
		m.metricsAddr.Store(&addr) // Status reads it
		srv = &http.Server{Handler: metrics.Handler(s.prometheusFamilies), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("Prometheus endpoint", "err", err)
			}
		}()
		s.log.Info("Prometheus endpoint", "url", s.metricsEndpoint())
	}
	return func() {
		cancel()
		if srv != nil {
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(sctx)
			c()
		}
		wg.Wait()
	}
}

// prometheusFamilies are the sampled metrics, the alarm states and the notification counters.
func (s *Supervisor) prometheusFamilies() []metrics.Family {
	m := &s.ops.monitoring
	fams := m.sampler.Families(s.cfg().Database.StackName)
	if m.alarms != nil {
		f := metrics.Family{Name: "apgstack_alarm_state", Help: "1 while the alarm is in ALARM, 0 while OK; absent while INSUFFICIENT_DATA", Type: "gauge"}
		for _, st := range m.alarms.States() {
			if st.State != alarm.Alarm && st.State != alarm.OK {
				continue // no data is not OK: a role without an instance (dev's reader) has none
			}
			v := 0.0
			if st.State == alarm.Alarm {
				v = 1
			}
			f.Rows = append(f.Rows, metrics.Row{Labels: map[string]string{"cluster": s.cfg().Database.StackName, "alarm": st.Name, "role": st.Role}, Value: v})
		}
		fams = append(fams, f)
	}
	if m.mailer != nil {
		st := m.mailer.Stats()
		for _, c := range []struct {
			name, help string
			v          int
		}{
			{"apgstack_notifications_sent_total", "Notifications delivered by SMTP", st.Sent},
			{"apgstack_notifications_failed_total", "Notifications given up after every attempt", st.Failed},
			{"apgstack_notifications_dropped_total", "Notifications pushed out of the full queue", st.Dropped},
		} {
			fams = append(fams, metrics.Family{Name: c.name, Help: c.help, Type: "counter",
				Rows: []metrics.Row{{Labels: map[string]string{"cluster": s.cfg().Database.StackName}, Value: float64(c.v)}}})
		}
	}
	return fams
}

// Metrics is the latest picture of metrics and alarms.
func (s *Supervisor) Metrics(context.Context) api.MetricsReport {
	r := api.MetricsReport{Cluster: s.cfg().Database.StackName, Samples: []metrics.Sample{}, Alarms: []alarm.State{}}
	if s.ops == nil || s.ops.sampler == nil {
		return r
	}
	m := &s.ops.monitoring
	r.Endpoint = s.metricsEndpoint()
	r.Interval = m.interval.String()
	r.Samples = m.sampler.Latest()
	if m.alarms != nil {
		r.Alarms = m.alarms.States()
	}
	if m.mailer != nil {
		st := m.mailer.Stats()
		r.Notifications = &st
	}
	return r
}

// metricsEndpointLocked is the Prometheus endpoint's URL, empty when not served; the caller
func (s *Supervisor) metricsEndpoint() string {
	if s.ops == nil {
		return ""
	}
	if a := s.ops.monitoring.metricsAddr.Load(); a != nil {
		return "http://" + *a + "/metrics"
	}
	return ""
}
