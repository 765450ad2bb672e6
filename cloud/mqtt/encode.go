package mqtt

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/portier-io/portier/agent"
)

// appendEvent appends e's EventPayload as JSON, byte for byte what
// json.Marshal of l.eventPayload(e) decodes to, without reflection: the
// drain encodes every event, and on a two-core gateway that shares its CPU
// with the broker the encoder's cost is throughput. A test holds it to
// encoding/json.
func (l *Link) appendEvent(b []byte, e agent.Event, category string) []byte {
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, Schema, 10)
	b = appendField(b, "site_id", l.cfg.Topics.Site)
	b = appendField(b, "gateway_id", l.cfg.Topics.Gateway)
	b = appendField(b, "event_id", e.ID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"ts":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "type", string(e.Type))
	b = appendField(b, "category", category)
	b = appendOmit(b, "door", e.Door)
	b = appendOmit(b, "reason", string(e.Reason))
	if e.User != nil {
		b = append(b, `,"user":{"id":`...)
		b = appendString(b, e.User.ID)
		b = appendOmit(b, "platform_id", e.User.PlatformID)
		b = appendOmit(b, "name", e.User.Name)
		b = append(b, '}')
	}
	if e.Group != nil {
		b = append(b, `,"group":{"id":`...)
		b = appendString(b, e.Group.ID)
		b = appendOmit(b, "name", e.Group.Name)
		b = append(b, '}')
	}
	b = appendOmit(b, "credential_kind", string(e.Kind))
	b = appendOmit(b, "credential", e.Credential)
	b = appendOmit(b, "detail", e.Detail)
	b = appendOmit(b, "command_id", e.CommandID)
	b = appendOmit(b, "actor", e.Actor)
	if e.Count != 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(e.Count), 10)
	}
	if len(e.SampleIDs) > 0 {
		b = append(b, `,"sample_ids":[`...)
		for i, id := range e.SampleIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendField(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendOmit(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendField(b, key, v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD as
// with encoding/json.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\r':
					b = append(b, '\\', 'r')
				case '\t':
					b = append(b, '\\', 't')
				default:
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
