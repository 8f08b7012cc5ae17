# Registers the every-minute notifyctl task. Run from an elevated PowerShell:
#   powershell -ExecutionPolicy Bypass -File contrib\windows\register-task.ps1
# Idempotent: re-running replaces the task and keeps the data.
#Requires -RunAsAdministrator
$ErrorActionPreference = 'Stop'

$exe  = "$env:ProgramFiles\notifyctl\notifyctl.exe"
# Must match the paths in notifyctl-task.xml (task XML has no variables).
$data = "$env:ProgramData\notifyctl"
$db   = Join-Path $data 'notifyctl.db'
$cfg  = Join-Path $data 'config.toml'

if (-not (Test-Path $exe)) { throw "install notifyctl.exe to $exe first" }
New-Item -ItemType Directory -Force -Path $data | Out-Null
# The task runs as NETWORK SERVICE: let it modify the data dir only (SQLite
# creates -wal/-shm files next to the database; emails may go to outbox\).
icacls $data /grant '*S-1-5-20:(OI)(CI)M' | Out-Null
if ($LASTEXITCODE) { throw "icacls failed ($LASTEXITCODE)" }
# An empty config means built-in defaults; the task passes --config, so it must exist.
if (-not (Test-Path $cfg)) { New-Item -ItemType File -Path $cfg | Out-Null }

& $exe --db $db --config $cfg init
if ($LASTEXITCODE) { throw "notifyctl init failed ($LASTEXITCODE)" }

$xml = Get-Content -Path (Join-Path $PSScriptRoot 'notifyctl-task.xml') | Out-String
Register-ScheduledTask -Xml $xml -TaskName notifyctl -Force | Out-Null
Write-Host "registered task 'notifyctl' (every minute); check with: notifyctl --db `"$db`" status --max-age 5m"
