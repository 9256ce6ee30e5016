//! The violation engine fanned out into parts (`engine::plan`, `sync::parts`), on generated
//! files through the local stack: the parts run from FinalizePartQueue as Lambda would run
//! them, and the tables they leave are the tables a pass in one transaction leaves (checksums,
//! both ways); a part delivered twice, at once or after it ran, does its work once; a part that
//! fails every delivery is retried alone, recorded failed and dead-lettered, and the run still
//! moves on, saying which part failed.

mod support;

use serde_json::Value;
use stormwater::sync::finalize::{self, FinalizeOutcome, Step};
use stormwater::sync::parts::{self, PartMessage, PartOutcome};
use stormwater::violations::engine;
use support::{Harness, harness};

/// Checksums of everything the engine writes, without the times it wrote them.
async fn written(h: &Harness) -> Value {
    h.json(
        "select jsonb_build_object(
           'events', (select count(*) from violation_event),
           'samples', (select count(*) from violation_sample),
           'violation_event', (select md5(string_agg(t::text, ',' order by t.id)) from (
               select id, facility_id, pollutant_key, reporting_year, benchmark_type, source,
                      first_date, last_date, sample_count, max_ratio, severity, status, measure,
                      benchmark_id, value, unit, exceedance_count, nd_policy, policy_sensitive,
                      screening, unverified, retracted_at is null as current
                 from violation_event) t),
           'violation_sample', (select md5(string_agg(t::text, ',' order by t.id)) from violation_sample t),
           'nal_annual', (select md5(string_agg(t::text, ',' order by t.facility_id, t.pollutant_key, t.reporting_year)) from (
               select facility_id, pollutant_key, reporting_year, benchmark_id, nal, sample_count,
                      nd_count, nd_without_limit, avg_nd_zero, avg_nd_half_mdl, avg_nd_dropped,
                      nd_policy, average, exceeds, policy_sensitive, instant_count
                 from nal_annual) t),
           'nal_level', (select md5(string_agg(t::text, ',' order by t.facility_id, t.pollutant_key)) from (
               select facility_id, pollutant_key, first_exceedance_year, second_exceedance_year,
                      exceedance_years, level_1_since, level_2_since from nal_level) t),
           'violation_exclusion', (select md5(string_agg(t::text, ',' order by t.source_table, t.source_row_id)) from (
               select facility_id, pollutant_key, reporting_year, source, source_table,
                      source_row_id, reason, sample_date, raw_value, raw_unit
                 from violation_exclusion) t),
           'violation_duplicate', (select md5(string_agg(t::text, ',' order by t.event_id, t.smarts_violation_id)) from (
               select facility_id, event_id, smarts_violation_id, score, reason
                 from violation_duplicate) t),
           'value_excluded', (select count(*) from data_quality_issue where action = 'value_excluded'))",
    )
    .await
}

/// What the engine changed in its last run (new, updated, escalated, retracted events and
/// samples written), with its status and error.
async fn last_engine_run(h: &Harness) -> Value {
    h.json(
        "select jsonb_build_object('status', status, 'mode', mode, 'error', error,
                 'changed', events_new + events_updated + events_escalated + events_retracted + samples,
                 'results', results, 'parts', notes->'parts')
           from violation_engine_run order by id desc limit 1",
    )
    .await
}

/// A sync run closed by its files step and waiting for the engine, as finalize leaves it; the
/// engine's watermark is cleared so that the pass recomputes every pair.
async fn closed_run_waiting_for_the_engine(h: &Harness) -> i64 {
    let run = stormwater::repo::sync::create_run(h.pool(), "test")
        .await
        .expect("run");
    sqlx::query(
        "update sync_run set status = 'succeeded', stage_finished_at = now(),
                finalize_requested_at = now(), finished_at = now(), finalize_step = 'engine'
          where id = $1",
    )
    .bind(run)
    .execute(h.pool())
    .await
    .expect("closed run");
    sqlx::query("delete from violation_engine_state")
        .execute(h.pool())
        .await
        .expect("watermark cleared");
    run
}

/// The run's finalize is done and its state published.
async fn assert_published(h: &Harness, run: i64) {
    let closed = h
        .json(&format!(
            "select jsonb_build_object('step', finalize_step, 'published', published_at is not null)
               from sync_run where id = {run}"
        ))
        .await;
    assert_eq!(
        closed,
        serde_json::json!({"step": "done", "published": true}),
        "run {run}"
    );
}

async fn parts_of(h: &Harness, run: i64) -> Value {
    h.json(&format!(
        "select jsonb_agg(jsonb_build_object('part', part, 'status', status, 'attempts', attempts)
                          order by part)
           from finalize_part where run_id = {run} and step = 'engine'"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanned_out_engine_pass_leaves_the_tables_one_pass_leaves_and_each_part_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = support::generate(dir.path(), 31, "0.004");
    let mut h = harness("fanout", None).await;
    // About 39,000 source rows: five or so parts.
    h.ctx.cfg.engine_rows_per_part = 8_000;

    // A first sync: the engine's first full pass, fanned out (the samples' indexes deferred
    // and built by the finish).
    let first = h.sync(manifest.sources(dir.path())).await;
    let run = h
        .json(&format!(
            "select jsonb_build_object('published', published_at is not null, 'step', finalize_step,
                     'parts', (select parts from finalize_phase where run_id = r.id and step = 'engine'),
                     'done', (select parts_done from finalize_phase where run_id = r.id and step = 'engine'))
               from sync_run r where id = {}",
            first.run_id
        ))
        .await;
    let parts = run["parts"]
        .as_i64()
        .expect("the engine step was fanned out");
    assert!(parts >= 3, "{run}");
    assert_eq!(run["done"], parts, "{run}");
    assert_eq!(run["published"], true, "{run}");
    assert_eq!(run["step"], "done", "{run}");
    let engine_run = last_engine_run(&h).await;
    assert_eq!(engine_run["status"], "succeeded", "{engine_run}");
    assert_eq!(engine_run["mode"], "full", "{engine_run}");
    assert_eq!(engine_run["parts"], parts, "{engine_run}");
    let fanned = written(&h).await;
    assert!(fanned["events"].as_i64().unwrap() > 0, "{fanned}");
    assert!(fanned["samples"].as_i64().unwrap() > 0, "{fanned}");
    let unindexed = h
        .scalar_i64(
            "select count(*) from import_deferred_index where table_name = 'violation_sample'",
        )
        .await;
    assert_eq!(unindexed, 0, "the finish built the deferred sample indexes");

    // One pass in one transaction over the same data finds nothing to change: the parts wrote
    // what it writes.
    let mut opts = engine::Options::new("test", h.ctx.cfg.nd_policy);
    opts.force_full = true;
    let single = engine::compute(h.pool(), &opts).await.expect("one pass");
    assert_eq!(
        single.events_new + single.events_updated + single.events_retracted + single.samples,
        0,
        "{single:?}"
    );
    assert_eq!(written(&h).await, fanned);

    // And the other way: a fanned-out recompute of what one pass wrote changes nothing, though
    // part 0 is delivered twice at once and part 1 again after it ran.
    // A full pass is mapped first: each source row is read once, by the map part of its id
    // range; the parts wait for the whole map (one sent early fails, and is retried).
    let recompute = closed_run_waiting_for_the_engine(&h).await;
    let outcome = finalize::run_step(&h.ctx, recompute, Step::Engine)
        .await
        .expect("fan-out");
    let FinalizeOutcome::FannedOut { parts: mapped, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let map_parts = h
        .scalar_i64(&format!(
            "select parts::bigint from finalize_phase where run_id = {recompute} and step = 'engine_map'"
        ))
        .await;
    assert_eq!(mapped as i64, map_parts);
    assert!(
        map_parts >= 3,
        "one map part per id range of each source table"
    );
    let part = |part, map| PartMessage {
        run_id: recompute,
        step: Step::Engine,
        part,
        map,
    };
    let early = parts::run_part(&h.ctx, &part(0, false), 1).await;
    assert!(
        early.is_err_and(|e| e.to_string().contains("map phase has not finished")),
        "a part sent before its map ran fails"
    );
    let map_zero = part(0, true);
    let (a, b) = tokio::join!(
        parts::run_part(&h.ctx, &map_zero, 1),
        parts::run_part(&h.ctx, &map_zero, 1)
    );
    let mut both = [a.expect("delivery"), b.expect("delivery")];
    both.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        both,
        [PartOutcome::AlreadyDone, PartOutcome::Done { last: false }],
        "a map part delivered twice at once maps once"
    );
    h.drain_target(stormwater::sync::runner::Target::FinalizePart)
        .await;
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from engine_measure m join violation_engine_run r on r.id = m.engine_run_id
              where r.sync_run_id = {recompute}"
        ))
        .await,
        single.results,
        "the map converted each result the one pass read, once"
    );
    // The map done, the step sends its parts.
    let outcome = finalize::run_step(&h.ctx, recompute, Step::Engine)
        .await
        .expect("the parts after the map");
    let FinalizeOutcome::FannedOut { parts: n, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(n as i64, parts);
    let zero = part(0, false);
    let (a, b) = tokio::join!(
        parts::run_part(&h.ctx, &zero, 1),
        parts::run_part(&h.ctx, &zero, 1)
    );
    let mut both = [a.expect("delivery"), b.expect("delivery")];
    both.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        both,
        [PartOutcome::AlreadyDone, PartOutcome::Done { last: false }]
    );
    h.drain().await;
    assert_eq!(
        parts::run_part(&h.ctx, &part(1, false), 2)
            .await
            .expect("late delivery"),
        PartOutcome::AlreadyDone
    );
    let phase = h
        .json(&format!(
            "select to_jsonb(p) - 'spec' - 'started_at' - 'finished_at' from finalize_phase p
              where run_id = {recompute} and step = 'engine'"
        ))
        .await;
    assert_eq!(
        phase["parts_done"], parts,
        "each part counted once: {phase}"
    );
    assert_eq!(phase["parts_failed"], 0, "{phase}");
    let engine_run = last_engine_run(&h).await;
    assert_eq!(engine_run["status"], "succeeded", "{engine_run}");
    assert_eq!(engine_run["changed"], 0, "{engine_run}");
    assert_eq!(written(&h).await, fanned);
    assert_published(&h, recompute).await;

    // A part that fails every delivery: retried alone, then recorded failed and dead-lettered;
    // the finish says which part failed, keeps the watermark and the run still moves on.
    let failing = closed_run_waiting_for_the_engine(&h).await;
    let victim = h
        .scalar_i64(&format!(
            "select min(facility_id) % {parts} from violation_event"
        ))
        .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "create function fail_part() returns trigger language plpgsql as $$
         begin
           if new.facility_id % {parts} = {victim} then raise exception 'part {victim} cannot write'; end if;
           return new;
         end $$;
         create trigger fail_part before insert on violation_event
           for each row execute function fail_part();"
    )))
    .execute(h.pool())
    .await
    .expect("trigger");
    finalize::run_step(&h.ctx, failing, Step::Engine)
        .await
        .expect("fan-out");
    h.drain().await;
    let outcome = parts_of(&h, failing).await;
    for p in outcome.as_array().unwrap() {
        if p["part"] == victim {
            assert_eq!(p["status"], "failed", "{outcome}");
            assert_eq!(
                p["attempts"],
                stormwater::config::FINALIZE_PART_MAX_RECEIVES,
                "{outcome}"
            );
        } else {
            assert_eq!(p["status"], "done", "{outcome}");
            assert_eq!(
                p["attempts"], 1,
                "only the failing part is retried: {outcome}"
            );
        }
    }
    let engine_run = last_engine_run(&h).await;
    assert_eq!(engine_run["status"], "failed", "{engine_run}");
    assert!(
        engine_run["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("part {victim} of {parts} failed"))
                && e.contains("cannot write")),
        "{engine_run}"
    );
    assert_eq!(
        h.scalar_i64("select count(*) from violation_engine_state")
            .await,
        0,
        "a pass with a failed part does not move the watermark"
    );
    let dead = stormwater::sync::runner::backlog(&h.ctx.sqs, &h.res.finalize_part_dlq_url)
        .await
        .expect("DLQ");
    assert_eq!(dead, 1, "the failed part's message is in the DLQ");
    assert_published(&h, failing).await;
    assert_eq!(
        written(&h).await,
        fanned,
        "nothing was written twice or lost"
    );

    // A map part that fails every delivery: the parts never run on an incomplete map (they
    // would retract the events of the rows it lost): they are recorded failed unrun, the pass
    // ends failed, nothing changes, the scratch partitions go and the run moves on.
    let map_failing = closed_run_waiting_for_the_engine(&h).await;
    // And a pass that never ended left its partition behind: the next mapped pass drops it.
    sqlx::raw_sql(
        "create table engine_measure_r999999 partition of engine_measure for values in (999999)
           partition by list (part);
         create unlogged table engine_measure_r999999_p0 partition of engine_measure_r999999
           for values in (0);",
    )
    .execute(h.pool())
    .await
    .expect("a leftover partition");
    sqlx::raw_sql(
        "create function fail_map() returns trigger language plpgsql as $$
         begin
           if new.source_table = 'smarts_industrial_monitoring'
              and new.source_row_id < (select min(id) + 1000 from smarts_industrial_monitoring)
           then raise exception 'map part cannot write'; end if;
           return new;
         end $$;
         create trigger fail_map before insert on engine_measure
           for each row execute function fail_map();",
    )
    .execute(h.pool())
    .await
    .expect("trigger");
    finalize::run_step(&h.ctx, map_failing, Step::Engine)
        .await
        .expect("fan-out");
    h.drain().await;
    let map_outcome = h
        .json(&format!(
            "select jsonb_agg(jsonb_build_object('part', part, 'status', status, 'attempts', attempts)
                              order by part)
               from finalize_part where run_id = {map_failing} and step = 'engine_map'"
        ))
        .await;
    let failed: Vec<&Value> = map_outcome
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{map_outcome}");
    assert_eq!(
        failed[0]["attempts"],
        stormwater::config::FINALIZE_PART_MAX_RECEIVES,
        "{map_outcome}"
    );
    let unrun = h
        .json(&format!(
            "select jsonb_build_array(count(*) filter (where status = 'failed' and attempts = 0
                                                         and error like 'not run: 1 of the % map parts failed'),
                                      count(*))
               from finalize_part where run_id = {map_failing} and step = 'engine'"
        ))
        .await;
    assert_eq!(
        unrun[0], unrun[1],
        "every part recorded failed unrun: {unrun}"
    );
    assert_eq!(last_engine_run(&h).await["status"], "failed");
    assert_eq!(
        h.scalar_i64("select count(*) from violation_engine_state")
            .await,
        0,
        "a pass whose map failed does not move the watermark"
    );
    assert_eq!(
        stormwater::sync::runner::backlog(&h.ctx.sqs, &h.res.finalize_part_dlq_url)
            .await
            .expect("DLQ"),
        2,
        "the failed map part's message is in the DLQ too"
    );
    assert_eq!(
        h.scalar_i64("select count(*) from pg_class where relname like 'engine\\_measure\\_r%'")
            .await,
        0,
        "the pass's scratch partitions are dropped, and the one a pass left"
    );
    assert_published(&h, map_failing).await;
    assert_eq!(written(&h).await, fanned, "nothing changed");

    // A facility that lost every link (its records moved away) is in no part: the finish
    // retracts what it still shows, as a pass in one transaction does.
    sqlx::raw_sql(
        "drop trigger fail_part on violation_event; drop function fail_part();
         drop trigger fail_map on engine_measure; drop function fail_map();",
    )
    .execute(h.pool())
    .await
    .expect("trigger dropped");
    let orphan = h
        .scalar_i64("select min(facility_id) from violation_event where retracted_at is null")
        .await;
    sqlx::query(
        "update facility_link set status = 'proposed' where facility_id = $1 and status = 'linked'",
    )
    .bind(orphan)
    .execute(h.pool())
    .await
    .expect("unlinked");
    let unlinked = closed_run_waiting_for_the_engine(&h).await;
    finalize::run_step(&h.ctx, unlinked, Step::Engine)
        .await
        .expect("fan-out");
    h.drain().await;
    assert_published(&h, unlinked).await;
    assert_eq!(last_engine_run(&h).await["status"], "succeeded");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_event where facility_id = {orphan} and retracted_at is null"
        ))
        .await,
        0,
        "the unlinked facility's events are retracted"
    );
    let after = written(&h).await;
    assert_ne!(after, fanned);
    let single = engine::compute(h.pool(), &opts).await.expect("one pass");
    assert_eq!(
        single.events_new + single.events_updated + single.events_retracted + single.samples,
        0,
        "{single:?}"
    );
    assert_eq!(written(&h).await, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_whose_deliveries_all_died_are_recorded_failed_by_the_next_run_and_their_step_finishes()
 {
    let dir = tempfile::tempdir().unwrap();
    let manifest = support::generate(dir.path(), 32, "0.002");
    let mut h = harness("fanout-overdue", None).await;
    h.ctx.cfg.engine_rows_per_part = 5_000;
    h.sync(manifest.sources(dir.path())).await;

    // A recompute is fanned out, and every delivery of its parts dies without a word (a
    // timeout or a crash on the last one): their messages are gone, their rows still pending.
    let stuck = closed_run_waiting_for_the_engine(&h).await;
    let outcome = finalize::run_step(&h.ctx, stuck, Step::Engine)
        .await
        .expect("fan-out");
    assert!(
        matches!(outcome, FinalizeOutcome::FannedOut { .. }),
        "{outcome:?}"
    );
    h.ctx
        .sqs
        .purge_queue()
        .queue_url(&h.res.finalize_part_queue_url)
        .send()
        .await
        .expect("purge");
    h.drain().await;
    let waiting = "select finalize_step from sync_run where id = ";
    assert_eq!(
        h.json(&format!("select to_jsonb(({waiting}{stuck}))"))
            .await,
        "engine"
    );

    // Within the deadline the next run leaves the parts alone; past it, they are recorded
    // failed and the step finishes, saying why.
    h.sync(Vec::new()).await;
    assert_eq!(
        h.json(&format!("select to_jsonb(({waiting}{stuck}))"))
            .await,
        "engine"
    );
    sqlx::query(
        "update finalize_phase set started_at = now() - interval '41 minutes' where run_id = $1",
    )
    .bind(stuck)
    .execute(h.pool())
    .await
    .expect("aged");
    h.sync(Vec::new()).await;
    assert_published(&h, stuck).await;
    let parts = parts_of(&h, stuck).await;
    assert!(
        parts
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "failed"),
        "{parts}"
    );
    let run = h
        .json(&format!(
            "select jsonb_build_object('status', status, 'error', error) from violation_engine_run
              where sync_run_id = {stuck}"
        ))
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .is_some_and(|e| e.contains("not reported within 40 minutes")),
        "{run}"
    );
}
