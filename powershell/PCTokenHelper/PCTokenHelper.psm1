function Get-PartnerAccessToken {
    <#
    .SYNOPSIS
    An Entra ID access token from pctoken-helper, shaped like New-PartnerAccessToken's result.
    .EXAMPLE
    Get-PartnerAccessToken -ProfileName contoso -Tenant fabrikam.onmicrosoft.com -Scopes 'https://graph.microsoft.com/.default'
    #>
    [CmdletBinding()]
    param(
        # Scopes, or the helper's aliases: partner-center, arm, graph, aad-graph, exchange, azure-devops, aks.
        [Parameter(Mandatory)] [string[]] $Scopes,
        # Target tenant, a GUID or domain; default: the profile's home tenant.
        [string] $Tenant,
        # The helper's profile; default: $env:PCTOKEN_PROFILE, else 'default'.
        [string] $ProfileName,
        # Skip the helper's cache.
        [switch] $ForceRefresh
    )
    $helperArgs = @('get', '--output', 'json')
    foreach ($scope in $Scopes) { $helperArgs += @('--scope', $scope) }
    if ($Tenant) { $helperArgs += @('--tenant', $Tenant) }
    if ($ProfileName) { $helperArgs += @('--profile', $ProfileName) }
    if ($ForceRefresh) { $helperArgs += '--force-refresh' }

    # Local to this function: stderr lines are messages, not errors, and a non-zero
    # exit code must not throw before the JSON answer is read (PowerShell 7.3+).
    $ErrorActionPreference = 'Continue'
    $PSNativeCommandUseErrorActionPreference = $false

    $answer = $null
    $output = & pctoken-helper @helperArgs 2>&1
    $exitCode = $LASTEXITCODE
    foreach ($line in $output) {
        if ($line -is [System.Management.Automation.ErrorRecord]) {
            $text = $line.ToString()
            if ($text -like 'warning: *') { Write-Warning $text.Substring(9) } else { Write-Verbose $text }
        } elseif ("$line".StartsWith('{')) {
            $answer = "$line" | ConvertFrom-Json
        }
    }
    if ($exitCode -ne 0 -or $null -eq $answer -or $answer.error) {
        $message = "pctoken-helper exited with code $exitCode"
        if ($answer.error) {
            $message = "$($answer.error.message) $($answer.error.aadsts)".Trim()
            if ($answer.error.remedy) { $message += ". Run: $($answer.error.remedy)" }
        }
        $exception = [System.InvalidOperationException]::new($message)
        $exception.Data['ExitCode'] = $exitCode
        $exception.Data['Code'] = $answer.error.code
        throw $exception
    }
    [pscustomobject]@{
        AccessToken = $answer.access_token
        ExpiresOn   = [DateTimeOffset]::FromUnixTimeSeconds([long]$answer.expires_on)
        TenantId    = $answer.tenant_id
        Scopes      = [string[]]$answer.scopes
    }
}
