//! The stores alone: what goes in comes out the same, on both backends.

use ami_bus::command::{AckResult, CommandKind};
use ami_commands::{
    AuditEntry, BulkRequest, BulkState, Campaign, CampaignMeter, CommandRecord, CommandState,
    CommandStore, MeterPhase, StoreError, Target,
};

use super::support::both_stores;

fn record(id: &str, next_at_ms: i64) -> CommandRecord {
    CommandRecord {
        id: id.into(),
        target: Target::new("m1", "dcu-1", "feeder-2"),
        kind: CommandKind::FirmwareBlock {
            version: "v2".into(),
            number: 1,
            total: 3,
            data: vec![0, 1, 2, 255],
        },
        state: CommandState::Queued,
        attempts: 0,
        requested_by: "olga".into(),
        reason: "why".into(),
        created_ms: 1,
        deadline_ms: 1_000,
        updated_ms: 1,
        next_at_ms,
        detail: String::new(),
        result: None,
        parent: Some("p".into()),
        bulk: Some("b".into()),
        campaign: None,
    }
}

fn entry(id: &str, from: Option<CommandState>, to: CommandState) -> AuditEntry {
    AuditEntry {
        command: id.into(),
        at_ms: 5,
        actor: "olga".into(),
        from,
        to,
        reason: "because".into(),
    }
}

async fn round_trips<S: CommandStore>(store: S) {
    let a = record("a", 10);
    let b = record("b", 500);
    store
        .insert_command(&a, &entry("a", None, CommandState::Queued))
        .await
        .unwrap();
    store
        .insert_command(&b, &entry("b", None, CommandState::Queued))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_command(&a, &entry("a", None, CommandState::Queued))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.command("a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.command("zz").await.unwrap(), None);
    let due: Vec<String> = store
        .due_commands(100, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(due, ["a"]);
    assert_eq!(store.due_commands(1_000, 1).await.unwrap().len(), 1);
    let mut a2 = a.clone();
    a2.state = CommandState::Confirmed;
    a2.attempts = 2;
    a2.detail = "relay reads open".into();
    a2.result = Some(AckResult::Read {
        frame: vec![9, 8],
        relay_closed: Some(false),
    });
    store
        .update_command(
            &a2,
            Some(&entry(
                "a",
                Some(CommandState::Queued),
                CommandState::Confirmed,
            )),
        )
        .await
        .unwrap();
    assert_eq!(store.command("a").await.unwrap(), Some(a2));
    let active: Vec<String> = store
        .active_commands()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(active, ["b"]);
    assert!(
        store
            .due_commands(10_000, 10)
            .await
            .unwrap()
            .iter()
            .all(|c| c.id == "b")
    );
    let trail = store.audit("a").await.unwrap();
    assert_eq!(trail.len(), 2);
    assert_eq!(
        trail[1],
        entry("a", Some(CommandState::Queued), CommandState::Confirmed)
    );
    assert_eq!(store.bulk_commands("b").await.unwrap().len(), 2);
    assert!(matches!(
        store.update_command(&record("nope", 0), None).await,
        Err(StoreError::NotFound(_))
    ));

    let mut bulk = BulkRequest {
        id: "bulk-1".into(),
        kind: CommandKind::Disconnect,
        targets: vec![Target::new("m1", "a", "s"), Target::new("m2", "a", "s")],
        requested_by: "olga".into(),
        reason: "arrears".into(),
        created_ms: 3,
        deadline_after_ms: 60_000,
        state: BulkState::PendingApproval,
    };
    store.put_bulk(&bulk).await.unwrap();
    assert_eq!(store.bulk("bulk-1").await.unwrap(), Some(bulk.clone()));
    bulk.state = BulkState::Rejected {
        by: "sam".into(),
        reason: "not now".into(),
    };
    store.put_bulk(&bulk).await.unwrap();
    assert_eq!(store.bulk("bulk-1").await.unwrap(), Some(bulk));

    let c = Campaign {
        id: "fw-1".into(),
        version: "v2".into(),
        image: vec![7; 1000],
        block_size: 300,
        requested_by: "olga".into(),
        created_ms: 4,
        command_deadline_ms: 9_000,
        max_failures: 3,
    };
    assert_eq!(c.blocks(), 4);
    assert_eq!(c.block(3).len(), 100);
    let meters: Vec<CampaignMeter> = ["m2", "m1"]
        .iter()
        .map(|m| CampaignMeter {
            campaign: "fw-1".into(),
            target: Target::new(m, "a", "s"),
            phase: MeterPhase::Transfer,
            next_block: 0,
            in_flight: None,
            failures: 0,
            version: None,
            detail: String::new(),
        })
        .collect();
    store.insert_campaign(&c, &meters).await.unwrap();
    assert_eq!(store.campaign("fw-1").await.unwrap(), Some(c));
    let mut m = meters[1].clone();
    m.phase = MeterPhase::Done;
    m.next_block = 4;
    m.in_flight = Some("x".into());
    m.version = Some("v2".into());
    store.update_campaign_meter(&m).await.unwrap();
    let back = store.campaign_meters("fw-1").await.unwrap();
    assert_eq!(back, vec![meters[0].clone(), m], "in the order given");
}
both_stores!(round_trips);
