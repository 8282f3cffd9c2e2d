package main

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
)

// localStep is a local activity as the history records it: a marker, written when the
// workflow task that ran it completed.
type localStep struct {
	Name    string
	At      time.Time
	Attempt int32
	Failure string
}

// localActivity reads a local-activity marker; ok is false for any other event.
func localActivity(ev *historypb.HistoryEvent) (s localStep, ok bool) {
	if ev.GetEventType() != enumspb.EVENT_TYPE_MARKER_RECORDED {
		return s, false
	}
	m := ev.GetMarkerRecordedEventAttributes()
	if m.GetMarkerName() != "LocalActivity" {
		return s, false
	}
	var data struct {
		ActivityType string
		ReplayTime   time.Time
		Attempt      int32
	}
	if p := m.GetDetails()["data"].GetPayloads(); len(p) > 0 {
		_ = converter.GetDefaultDataConverter().FromPayload(p[0], &data)
	}
	s = localStep{Name: data.ActivityType, At: ev.GetEventTime().AsTime(), Attempt: data.Attempt}
	if f := m.GetFailure(); f != nil {
		s.Failure = f.GetMessage()
	}
	return s, true
}
