# Module manifest of PCTokenHelper: Get-PartnerAccessToken, Entra ID access tokens from
# pctoken-helper shaped like New-PartnerAccessToken's result (docs/powershell.md).
# Release archives set ModuleVersion to the release's version.
@{
    RootModule           = 'PCTokenHelper.psm1'
    ModuleVersion        = '0.0.0'
    GUID                 = 'ebc30a41-ef84-4da3-a835-b997d8a616d6'
    Author               = 'The pctoken-helper authors'
    CompanyName          = 'pctoken-helper'
    Copyright            = '(c) The pctoken-helper authors'
    Description          = 'Get-PartnerAccessToken: Microsoft Entra ID access tokens from pctoken-helper (Secure Application Model), shaped like New-PartnerAccessToken''s result. Needs pctoken-helper on PATH.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FunctionsToExport    = @('Get-PartnerAccessToken')
    CmdletsToExport      = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('EntraID', 'AzureAD', 'PartnerCenter', 'SecureApplicationModel', 'CSP', 'Token')
            ProjectUri = 'https://github.com/pctoken/pctoken-helper'
        }
    }
}
