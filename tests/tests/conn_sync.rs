//! The IPVS connection sync daemon between the seed's directors: absent with the seed's
//! misspelt `lvs_sync_daemon_inteface` (keepalived 2.2 skips it as an unknown keyword), and
//! running, master to backup, once the keyword is spelt as keepalived knows it.

mod common;

use common::load;
use lvs_scenarios::judge::{Report, RunOptions};
use lvs_scenarios::Role;
use lvs_sim::scenario::run;

/// Sum of ActiveConn + InActConn over the last `ipvsadm -L -n` snapshot of `director`.
fn last_conn_count(r: &Report, director: &str) -> u64 {
    let table = r
        .snapshots
        .iter()
        .rev()
        .find(|s| s.director == director)
        .and_then(|s| s.table.clone())
        .unwrap_or_else(|| panic!("{director} has a table snapshot"));
    table
        .lines()
        .filter(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress"))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| cols.get(i).and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
            n(4) + n(5)
        })
        .sum()
}

fn traffic_run(fix_keyword: bool) -> Report {
    let mut s = load("03-traffic-spread");
    if fix_keyword {
        for h in &mut s.hosts {
            if let Role::Director(d) = &mut h.role {
                d.keepalived_conf.text = d
                    .keepalived_conf
                    .text
                    .replace("lvs_sync_daemon_inteface", "lvs_sync_daemon_interface");
            }
        }
    }
    match run(&s, &RunOptions::default()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_seed_typo_means_no_sync_so_the_backup_table_stays_empty() {
    let r = traffic_run(false);
    assert!(last_conn_count(&r, "director1") > 0, "the master forwards");
    assert_eq!(last_conn_count(&r, "director2"), 0, "nothing synced");
}

#[test]
fn with_the_keyword_spelt_right_the_backup_learns_the_masters_connections() {
    let r = traffic_run(true);
    let master = last_conn_count(&r, "director1");
    let backup = last_conn_count(&r, "director2");
    assert!(master > 0, "the master forwards");
    assert!(backup > 0, "the backup installed synced connections");
    assert!(backup <= master + 16, "backup {backup} vs master {master}");
}
