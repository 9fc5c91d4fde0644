<?php
// A php-gearman (GearmanClient) client for the compat tests; prints one
// JSON object describing what it saw.
// usage: php php_client.php HOST PORT MODE FUNCTION [ARG...]
//   fg FUNC DATA                foreground job: result and return code
//   bgstatus FUNC RELEASE_FILE  background job, polled with jobStatus
//   fail FUNC | exc FUNC        failing job, via tasks and callbacks
//   unique FUNC UNIQ D1 D2      two tasks with the same unique
//   data FUNC                   WORK_DATA / WORK_WARNING callbacks
// Options (env): PHP_CLIENT_EXCEPTIONS=0 turns the exceptions option off
// (no OPTION_REQ: neither addServer's handler nor an exception callback,
// which would enable it again); PHP_CLIENT_TIMEOUT_MS (default 10000).
[$_, $host, $port, $mode, $func] = $argv;
$args = array_slice($argv, 5);
$exceptions = getenv("PHP_CLIENT_EXCEPTIONS") !== "0";

$client = new GearmanClient();
$client->addServer($host, (int)$port, $exceptions);
$client->setTimeout((int)(getenv("PHP_CLIENT_TIMEOUT_MS") ?: 10000));
$out = [];
$events = [];

function track(GearmanClient $client, array &$events, bool $exceptions) {
    $client->setCreatedCallback(function ($t) use (&$events) {
        $events[] = ["created", $t->unique(), $t->jobHandle()];
    });
    $client->setDataCallback(function ($t) use (&$events) {
        $events[] = ["data", $t->data()];
    });
    $client->setWarningCallback(function ($t) use (&$events) {
        $events[] = ["warning", $t->data()];
    });
    $client->setCompleteCallback(function ($t) use (&$events) {
        $events[] = ["complete", $t->unique(), $t->jobHandle(), $t->data()];
    });
    $client->setFailCallback(function ($t) use (&$events) {
        $events[] = ["fail", $t->jobHandle()];
    });
    if ($exceptions) {
        $client->setExceptionCallback(function ($t) use (&$events) {
            $events[] = ["exception", $t->data()];
        });
    }
}

switch ($mode) {
case "fg":
    $out["result"] = $client->doNormal($func, $args[0]);
    $out["rc"] = $client->returnCode();
    break;
case "bgstatus":
    $handle = $client->doBackground($func, $args[0]);
    $out["rc"] = $client->returnCode();
    $out["handle"] = $handle;
    $seen = [];
    $deadline = microtime(true) + 15;
    do {
        $st = $client->jobStatus($handle);   // [known, running, num, den]
        $seen[] = $st;
        usleep(20000);
    } while ($st != [true, true, 1, 2] && microtime(true) < $deadline);
    $out["running"] = $st;
    touch($args[0]);
    do {
        $st = $client->jobStatus($handle);
        usleep(20000);
    } while ($st[0] && microtime(true) < $deadline);
    $out["finished"] = $st;
    break;
case "fail":
case "exc":
case "data":
    track($client, $events, $exceptions);
    $client->addTask($func, "payload");
    $out["ok"] = $client->runTasks();
    $out["rc"] = $client->returnCode();
    break;
case "unique":
    track($client, $events, $exceptions);
    [$uniq, $d1, $d2] = $args;
    $client->addTask($func, $d1, null, $uniq);
    $client->addTask($func, $d2, null, $uniq);
    $out["ok"] = $client->runTasks();
    $out["rc"] = $client->returnCode();
    break;
default:
    fwrite(STDERR, "unknown mode $mode\n");
    exit(2);
}
$out["events"] = $events;
echo json_encode($out), "\n";
