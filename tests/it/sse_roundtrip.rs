//! The encoder makes field injection impossible: any data and any valid event name survive
//! encoding and a spec-conformant parse unchanged, and names that could inject are refused.
//!
//! "Unchanged" as EventSource defines it: SSE has no way to carry a bare `\r` in data, so the
//! spec turns every line break (`\n`, `\r\n`, `\r`) into `\n`. Everything else is exact.

use proptest::prelude::*;
use sselab::sse::parser::Parser;
use sselab::sse::{EventName, Frame};

/// Data as a browser would receive it: every line break becomes `\n`.
fn as_delivered(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

/// Any string, or one dense with line breaks, colons and field names.
fn data() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(\r\n|\r|\n|data|id|event|retry|:| |x){0,30}"
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_data_round_trips(data in data(), id in any::<u64>()) {
        let bytes = Frame::new().id(id).data(&data).finish();
        let events = Parser::new().feed(&bytes);
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(&events[0].data, &as_delivered(&data));
        prop_assert_eq!(&events[0].id, &id.to_string());
        prop_assert_eq!(&events[0].event, "message");
    }

    #[test]
    fn line_breaks_in_data_cannot_start_new_fields(
        parts in proptest::collection::vec("[a-z:]{0,8}", 1..6),
        breaks in proptest::collection::vec(prop_oneof!["\n", "\r\n", "\r"], 5),
    ) {
        // Data built to look like fields ("event:x", "id:9", "retry:1") after every break.
        let mut data = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 { data.push_str(&breaks[i % breaks.len()]); }
            data.push_str(part);
        }
        let bytes = Frame::new().data(&data).finish();
        let events = Parser::new().feed(&bytes);
        prop_assert_eq!(events.len(), 1);
        // Every line break comes back as \n; nothing else changes and no field leaks out.
        prop_assert_eq!(&events[0].data, &as_delivered(&data));
        prop_assert_eq!(&events[0].event, "message");
        prop_assert_eq!(&events[0].id, "");
        prop_assert_eq!(events[0].retry, None);
    }

    #[test]
    fn any_valid_event_name_round_trips(name in "[^\r\n:]{1,40}", data in data()) {
        let event = EventName::new(name.clone()).expect("no break, no colon");
        let bytes = Frame::new().event(&event).data(&data).finish();
        let events = Parser::new().feed(&bytes);
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(&events[0].event, &name);
        prop_assert_eq!(&events[0].data, &as_delivered(&data));
    }

    #[test]
    fn names_with_breaks_or_colons_are_refused(
        head in "[a-z]{0,5}", bad in prop_oneof!["\n", "\r", ":"], tail in "[a-z]{0,5}",
    ) {
        let name = format!("{}{}{}", head, bad, tail);
        prop_assert!(EventName::new(name).is_err());
    }

    #[test]
    fn chunking_does_not_change_what_is_parsed(data in data(), split in any::<prop::sample::Index>()) {
        let bytes = Frame::new().id(1).data(&data).finish();
        let at = split.index(bytes.len() + 1);
        let mut parser = Parser::new();
        let mut events = parser.feed(&bytes[..at]);
        events.extend(parser.feed(&bytes[at..]));
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(&events[0].data, &as_delivered(&data));
    }
}
