#!/usr/bin/perl
# A Gearman::Worker (libgearman-client-perl) worker for the compat tests.
# usage: perl perl_worker.pl HOST PORT PREFIX
# Registers PREFIX_rev, PREFIX_slowrev, PREFIX_status, PREFIX_fail and
# PREFIX_exc, then works until killed.
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use Gearman::Worker;

my ($host, $port, $prefix) = @ARGV;
$| = 1;

my $worker = Gearman::Worker->new(job_servers => ["$host:$port"]);

$worker->register_function("${prefix}_rev" => sub {
    return scalar reverse $_[0]->arg;
});

# Sleeps first, so that submissions arriving meanwhile can coalesce.
$worker->register_function("${prefix}_slowrev" => sub {
    sleep 0.7;
    return scalar reverse $_[0]->arg;
});

# Reports 1/2, waits (at most 20 s) for the file named by the workload,
# reports 2/2 and completes.
$worker->register_function("${prefix}_status" => sub {
    my $job = shift;
    my $release = $job->arg;
    $job->set_status(1, 2);
    my $deadline = time + 20;
    sleep 0.02 while !-e $release && time < $deadline;
    $job->set_status(2, 2);
    return "released";
});

# Returning undef makes the worker send WORK_FAIL.
$worker->register_function("${prefix}_fail" => sub { return undef });

# An explicit WORK_EXCEPTION (no WORK_FAIL follows: the job counts as done).
$worker->register_function("${prefix}_exc" => sub {
    my $job = shift;
    $worker->send_work_exception($job, "boom: " . $job->arg);
    return undef;
});

print STDERR "perl worker ready\n";
$worker->work while 1;
