#!/usr/bin/perl
# A Gearman::Client (libgearman-client-perl) client for the compat tests;
# prints one JSON object describing what it saw.
# usage: perl perl_client.pl HOST PORT MODE FUNCTION [ARG...]
#   fg FUNC DATA                foreground job (do_task)
#   bgstatus FUNC RELEASE_FILE  dispatch_background, polled with get_status
#   fail FUNC | exc FUNC        failing job: on_fail / on_exception
#   unique FUNC UNIQ D1 D2      two tasks with the same uniq in one task set
#   status FUNC                 get_job_server_status (the admin `status`)
# Env: PERL_CLIENT_EXCEPTIONS=0 turns the exceptions option off.
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use JSON::PP;
use Gearman::Client;

my ($host, $port, $mode, $func, @args) = @ARGV;
my $exceptions = ($ENV{PERL_CLIENT_EXCEPTIONS} // "1") ne "0";
my $client = Gearman::Client->new(job_servers => ["$host:$port"],
                                  exceptions => $exceptions ? 1 : 0);
my %out;
my @events;

sub status_list {
    my $st = shift;
    return undef unless $st;
    return [$st->known ? 1 : 0, $st->running ? 1 : 0, map { $_ + 0 } @{ $st->progress || [0, 0] }];
}

my %callbacks = (
    on_complete  => sub { push @events, ["complete", ${ $_[0] }] },
    on_fail      => sub { push @events, ["fail"] },
    on_exception => sub { push @events, ["exception", $_[0]] },
    on_status    => sub { push @events, ["status", $_[0] + 0, $_[1] + 0] },
    timeout      => 10,
);

if ($mode eq "fg") {
    my $res = $client->do_task($func, $args[0], {%callbacks});
    $out{result} = defined $res ? $$res : undef;
}
elsif ($mode eq "bgstatus") {
    my $handle = $client->dispatch_background($func, $args[0]);
    $out{handle} = $handle;
    my $deadline = time + 15;
    my $st;
    do {
        $st = status_list($client->get_status($handle));
        sleep 0.02;
    } while (!($st && "@$st" eq "1 1 1 2") && time < $deadline);
    $out{running} = $st;
    open(my $fh, ">", $args[0]) or die "touch $args[0]: $!";
    close $fh;
    do {
        $st = status_list($client->get_status($handle));
        sleep 0.02;
    } while ($st && $st->[0] && time < $deadline);
    $out{finished} = $st;
}
elsif ($mode eq "fail" || $mode eq "exc") {
    my $res = $client->do_task($func, "payload", {%callbacks});
    $out{result} = defined $res ? $$res : undef;
}
elsif ($mode eq "unique") {
    my ($uniq, $d1, $d2) = @args;
    my $ts = $client->new_task_set;
    for my $data ($d1, $d2) {
        $ts->add_task($func, $data, {
            uniq        => $uniq,
            on_complete => sub { push @events, ["complete", ${ $_[0] }] },
            on_fail     => sub { push @events, ["fail"] },
        });
    }
    $ts->wait(timeout => 10);
}
elsif ($mode eq "status") {
    my $all = $client->get_job_server_status;
    my ($server) = values %$all;
    $out{status} = $server->{$func};
}
else {
    die "unknown mode $mode\n";
}
$out{events} = \@events;
print JSON::PP->new->canonical->encode(\%out), "\n";
